/**
 * Sample assets for `anycdn demo`, generated at start-up with sharp (nothing is shipped in the
 * repository): a photo-like JPEG, a PNG with transparency, an SVG, a stylesheet and an HTML page
 * that shows the images with `srcset` and `fmt=auto`, uploaded as the root's `index.html`, so the
 * edge's own URL (`/`) opens it.
 */
import sharp from 'sharp';

export interface DemoAsset {
  path: string;
  data: Buffer;
  tags: string[];
  cacheControl?: string;
}

function sceneSvg(width: number, height: number): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#1e3c72"/><stop offset="1" stop-color="#f7b267"/></linearGradient>
    <radialGradient id="sun"><stop offset="0" stop-color="#fff6c2"/><stop offset="1" stop-color="#f79d65" stop-opacity="0"/></radialGradient>
  </defs>
  <rect width="100%" height="100%" fill="url(#sky)"/>
  <circle cx="${width * 0.7}" cy="${height * 0.45}" r="${height * 0.25}" fill="url(#sun)"/>
  <path d="M0 ${height * 0.75} L${width * 0.2} ${height * 0.5} L${width * 0.4} ${height * 0.7} L${width * 0.65} ${height * 0.42} L${width} ${height * 0.72} L${width} ${height} L0 ${height} Z" fill="#2d3047"/>
  <path d="M0 ${height * 0.85} L${width * 0.3} ${height * 0.68} L${width * 0.55} ${height * 0.82} L${width * 0.8} ${height * 0.66} L${width} ${height * 0.8} L${width} ${height} L0 ${height} Z" fill="#1b1d2e"/>
</svg>`);
}

const LOGO_SVG = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512" viewBox="0 0 512 512">
  <circle cx="256" cy="256" r="200" fill="#e4572e" fill-opacity="0.9"/>
  <circle cx="256" cy="256" r="120" fill="none" stroke="#ffffff" stroke-width="40"/>
</svg>`);

const CHECK_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 24 24"><path fill="#29bf12" d="M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z"/></svg>\n`;

const CSS = `body { font-family: system-ui, sans-serif; margin: 2rem auto; padding: 0 1rem; max-width: 60rem; color: #1b1d2e; }
img { max-width: 100%; height: auto; display: block; border-radius: 6px; }
figure { margin: 0 0 2rem; } figcaption { font-size: .9rem; color: #555; margin-top: .4rem; }
code { background: #f1f1f1; padding: .1rem .3rem; border-radius: 3px; }
.status { font-family: ui-monospace, monospace; font-size: .8rem; color: #0b6e4f; }
`;

function demoPage(): string {
  const widths = [320, 640, 960, 1280];
  const srcset = widths.map((w) => `/photos/landscape.jpg?w=${w}&fmt=auto ${w}w`).join(', ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>anycdn demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/css/site.css"><link rel="icon" href="/icons/check.svg"></head>
<body>
<h1>anycdn demo</h1>
<p>Every image below is resized and re-encoded from one original, once, then cached.
<code>fmt=auto</code> picks AVIF, WebP or JPEG from what your browser accepts.</p>
<figure><img src="/photos/landscape.jpg?w=960&fmt=auto" srcset="${srcset}" sizes="(max-width: 60rem) 100vw, 60rem" width="2400" height="1500" alt="A generated landscape">
<figcaption><code>/photos/landscape.jpg?w=…&amp;fmt=auto</code> (srcset of ${widths.join(', ')} px)</figcaption></figure>
<figure><img src="/photos/logo.png?w=200&fmt=auto" srcset="/photos/logo.png?w=200&fmt=auto 1x, /photos/logo.png?w=400&fmt=auto 2x" width="200" height="200" alt="Logo with transparency">
<figcaption><code>/photos/logo.png?w=200&amp;fmt=auto</code>: transparency kept in WebP/AVIF</figcaption></figure>
<figure><img src="/icons/check.svg" width="96" height="96" alt="Check mark">
<figcaption><code>/icons/check.svg</code>: served with a Content-Security-Policy that forbids scripts</figcaption></figure>
<h2>What the cache did</h2>
<p>Each resource of this page, with the outcome the edge reported in its <code>Server-Timing</code>
header (<code>miss</code> the first time, <code>hit</code> after a reload):</p>
<ul id="status" class="status"></ul>
<script>
function show() {
  const list = document.getElementById('status');
  list.textContent = '';
  for (const e of performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))) {
    const cache = (e.serverTiming || []).find((t) => t.name === 'cdn-cache');
    const li = document.createElement('li');
    const u = new URL(e.name);
    li.textContent = u.pathname + u.search + ' \u2192 ' + (cache ? cache.description : 'no edge timing (served by the browser cache?)') + ', ' + Math.round(e.duration) + ' ms';
    list.appendChild(li);
  }
}
addEventListener('load', () => setTimeout(show, 50));
</script>
</body></html>
`;
}

export async function demoAssets(): Promise<DemoAsset[]> {
  const photo = await sharp(sceneSvg(2400, 1500)).jpeg({ quality: 90 }).toBuffer();
  const logo = await sharp(LOGO_SVG).png().toBuffer();
  return [
    { path: 'photos/landscape.jpg', data: photo, tags: ['demo', 'photos'] },
    { path: 'photos/logo.png', data: logo, tags: ['demo', 'photos'] },
    { path: 'icons/check.svg', data: Buffer.from(CHECK_SVG), tags: ['demo'] },
    { path: 'css/site.css', data: Buffer.from(CSS), tags: ['demo'] },
    { path: 'index.html', data: Buffer.from(demoPage()), tags: ['demo'], cacheControl: 'public, max-age=60' },
  ];
}
