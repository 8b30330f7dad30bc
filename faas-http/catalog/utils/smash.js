// whisk.system/utils/smash: nests every parameter under the property named by `$fieldName`.
//   { a: 1, b: { c: 2 }, $fieldName: 'p' }  ->  { p: { a: 1, b: { c: 2 } } }
function main(args) {
  const field = args.$fieldName;
  if (typeof field !== 'string') {
    return { error: "Expected an argument '$fieldName' of type 'string'." };
  }
  const nested = Object.assign({}, args);
  delete nested.$fieldName;
  return { [field]: nested };
}
