// whisk.system/samples/wordCount: the number of space-separated words in `payload`.
function main(params) {
  if (params.payload === undefined || params.payload === null) {
    return { error: "Expected an argument 'payload'." };
  }
  const text = String(params.payload);
  const count = text.split(' ').length;
  console.log("The message '" + text + "' has", count, 'words');
  return { count };
}
