// whisk.system/utils/split: splits the string `payload` into `lines` at `separator` (a
// string; default: line breaks). The input payload is returned beside the lines.
function main(params) {
  if (params.payload === undefined || params.payload === null) {
    return { error: "Expected an argument 'payload'." };
  }
  const separator = params.separator || /\r?\n/;
  const lines = String(params.payload).split(separator);
  const result = { lines, payload: params.payload };
  console.log('split: returning ' + lines.length + ' lines');
  return result;
}
