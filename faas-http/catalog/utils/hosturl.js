// whisk.system/utils/hosturl: the URL that invokes an action (or fires a trigger) of the
// caller's namespace.
//   path    `action` or `package/action` (omitted: the collection's URL)
//   web     true for the web-action URL (`.../api/v1/web/<ns>/<package|default>/<action><ext>`)
//   ext     for web actions: one of .html, .http, .json, .svg, .text
//   trigger true for a trigger's URL (triggers are not in packages and have no web URL)
const EXTENSIONS = ['.html', '.http', '.json', '.svg', '.text'];

function main(args) {
  const host = process.env.__OW_API_HOST;
  const ns = process.env.__OW_NAMESPACE;
  const web = args.web === true;
  const trigger = args.trigger === true;
  const path = typeof args.path === 'string' ? args.path : undefined;
  if (web && trigger) {
    return { error: 'triggers are not allowed for web actions.' };
  }
  if (web && args.ext && !EXTENSIONS.includes(args.ext)) {
    return { error: 'extension for web action must be one of [' + EXTENSIONS.map((e) => '"' + e + '"').join(', ') + '].' };
  }
  if (trigger && path && path.includes('/')) {
    return { error: 'triggers are not allowed in packages.' };
  }
  const base = web
    ? `${host}/api/v1/web/${ns}`
    : `${host}/api/v1/namespaces/${ns}/${trigger ? 'triggers' : 'actions'}`;
  if (!path) {
    return { url: base };
  }
  const entity = web && !path.includes('/') ? `default/${path}` : path;
  return { url: `${base}/${entity}${web ? (args.ext || '') : ''}` };
}
