// whisk.system/utils/cat: joins `lines` (strings or numbers) with newlines into `payload`.
// Every other input field is dropped.
function main(params) {
  const lines = Array.isArray(params.lines) ? params.lines : [];
  const result = { lines, payload: lines.join('\n') };
  console.log('cat: returning ' + JSON.stringify(result));
  return result;
}
