// Render Markdown as a Hexo site does (hexo-renderer-marked at its defaults), one document per line.
// Usage: node render_markdown.js SITE_DIR; each stdin line is a JSON string of Markdown, each
// stdout line the JSON string of the HTML. One process serves a whole test session.
const Hexo = require('hexo');
const readline = require('readline');

async function main() {
  const hexo = new Hexo(process.argv[2], { silent: true });
  hexo.env.init = true; // load the site's plugins (the renderer), as hexo-cli does in a site folder
  await hexo.init();
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    const html = hexo.render.renderSync({ text: JSON.parse(line), engine: 'markdown' });
    process.stdout.write(JSON.stringify(html) + '\n');
  }
  await hexo.exit();
}

main().catch((err) => { console.error(err); process.exit(1); });
