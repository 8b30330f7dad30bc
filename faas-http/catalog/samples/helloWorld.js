// whisk.system/samples/helloWorld: logs a greeting for `payload`; the result is empty.
function main(params) {
  console.log('hello', params.payload + '!');
  return {};
}
