// whisk.system/utils/sort: `lines` sorted (JavaScript's default order), with their count.
function main(params) {
  const lines = Array.isArray(params.lines) ? params.lines.slice() : [];
  lines.sort();
  console.log('sort: ' + lines.length + ' lines');
  return { lines, length: lines.length };
}
