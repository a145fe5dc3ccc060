// Load a folder of postarc posts with Hexo's own loader and print what Hexo read, as JSON.
// Usage: node load_posts.js SITE_DIR   (SITE_DIR/source/_posts holds the posts)
const Hexo = require('hexo');

async function main() {
  const hexo = new Hexo(process.argv[2], { silent: true });
  hexo.env.init = true; // what hexo-cli sets in a site folder: load the site's plugins (the renderer)
  await hexo.init();
  await hexo.load();
  const posts = hexo.locals.get('posts').map((p) => ({
    source: p.source,
    title: p.title,
    date: p.date.toISOString(),
    categories: p.categories.map((c) => c.name),
    content_length: p.content.length,
    has_images: /<img /.test(p.content),
    enclosures: p.enclosures || null,
    sources: p.sources || null,
  }));
  process.stdout.write(JSON.stringify(posts));
  await hexo.exit();
}

main().catch((err) => { console.error(err); process.exit(1); });
