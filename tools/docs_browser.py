"""Browser test of the built site in docs/: headless Chromium (Debian's `chromium` + `chromium-driver`, no browser
download) driven by selenium, the site served from 127.0.0.1 under its GitHub Pages path (/<doc_baseurl>/).

    python tools/docs_browser.py [--screenshots DIR]

Checks, on every page: the navigation lists every notebook in notebook order; each exported symbol's API entry
renders (heading, signature, source link); figures load (non-zero natural size); maths is typeset; nothing is
requested from anywhere but the local server; no console errors. Then search finds an exported name."""
import functools, json, os, re, shutil, sys, tempfile, threading, time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--window-size=1400,1000']
results = []

def check(name, ok, detail=''):
    results.append(ok); print(f"{'PASS' if ok else 'FAIL'} {name}" + (f': {detail}' if detail and not ok else ''))

def expected_pages(cfg):
    "Notebook pages in navigation order, computed from nbs/ independently of tools/docs.py."
    from nbdev.doclinks import _nbpath2html
    nbs = cfg.nbs_path
    nbs_ = [p for p in nbs.rglob('*.ipynb') if not any(s.startswith(('_', '.')) for s in p.relative_to(nbs).parts)]
    nbs_.sort(key=lambda p: (p.parent.relative_to(nbs).parts, '' if p.stem == 'index' else p.name))
    return [_nbpath2html(p.relative_to(nbs)).as_posix() for p in nbs_]

def serve(site, base):
    "The site under /base/ on 127.0.0.1, as GitHub Pages serves a project site."
    class Handler(SimpleHTTPRequestHandler):
        def translate_path(self, path):
            path = path.split('?')[0].split('#')[0]
            return str(site/path[len(base):]) if path.startswith(base) else str(site/'__missing__')
        def log_message(self, *a): pass
    srv = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv

def wait(drv, js, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if drv.execute_script(js): return True
        time.sleep(0.1)
    return False

def main(argv):
    os.environ['SE_OFFLINE'] = 'true'                        # selenium-manager must never download anything
    from nbdev.config import get_config
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    cfg = get_config(path=ROOT)
    shots = Path(argv[argv.index('--screenshots') + 1]) if '--screenshots' in argv else None
    site, base = ROOT/cfg.doc_path.name, '/' + cfg.doc_baseurl.strip('/') + '/'
    sys.path.insert(0, str(ROOT))
    syms = {k: v[0] for m in __import__(f'{cfg.lib_name}._modidx', fromlist=['d']).d['syms'].values() for k, v in m.items()
            if not any(s.startswith('_') for s in k.split('.'))}
    pages = expected_pages(cfg)
    srv = serve(site, base); url = f'http://127.0.0.1:{srv.server_port}{base}'
    profile = tempfile.mkdtemp(prefix='chromium-profile-')
    opts = webdriver.ChromeOptions(); opts.binary_location = shutil.which('chromium') or '/usr/bin/chromium'
    for a in FLAGS + [f'--user-data-dir={profile}']: opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'performance': 'ALL', 'browser': 'ALL'})
    drv = webdriver.Chrome(service=Service(shutil.which('chromedriver') or '/usr/bin/chromedriver'), options=opts)
    print(f'{drv.capabilities["browserName"]} {drv.capabilities["browserVersion"]}, site {site} at {url}')
    try:
        for page in pages:
            drv.get(url + page)
            wait(drv, 'return document.readyState === "complete"')
            nav = drv.execute_script("""return [...document.querySelectorAll('nav.md-nav--primary a.md-nav__link[href]')]
                .map(a => a.getAttribute('href')).filter(h => /\\.html$/.test(h))""")
            rel = [os.path.normpath(os.path.join(os.path.dirname(page), h)) for h in nav]
            check(f'{page}: navigation lists the {len(pages)} notebooks in order', list(dict.fromkeys(rel)) == pages,
                  f'{list(dict.fromkeys(rel))} != {pages}')
            for sym in [s for s, u in syms.items() if u.split('#')[0] == page]:
                anchor = syms[sym].split('#')[1]
                ok = drv.execute_script("""const h = document.getElementById(arguments[0]); if (!h) return 'no element';
                    const e = h.closest('.api-entry'); if (!e) return 'not in an API entry';
                    const sig = e.querySelector('pre code'); if (!sig || !sig.offsetHeight) return 'no visible signature';
                    if (!e.querySelector('a.api-source[href]')) return 'no source link';
                    return true""", anchor)
                check(f'{page}: API entry {sym}', ok is True, ok)
            wait(drv, "return [...document.querySelectorAll('article img')].every(i => i.complete)")
            bad = drv.execute_script("""return [...document.querySelectorAll('article img')]
                .filter(i => !(i.naturalWidth > 0 && i.naturalHeight > 0)).map(i => i.getAttribute('src'))""")
            n = drv.execute_script("return document.querySelectorAll('article img').length")
            if n: check(f'{page}: {n} figure(s) load', not bad, f'not loaded: {bad}')
            n = drv.execute_script("return document.querySelectorAll('.arithmatex').length")
            if n: check(f'{page}: {n} formula(s) typeset by the bundled MathJax', wait(drv,
                "return document.querySelectorAll('.arithmatex mjx-container').length >= arguments[0]".replace('arguments[0]', str(n))))
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
            for name, page in [('front', 'index.html'), ('notebook', next((p for p in pages[1:] if any(
                    u.startswith(p + '#') for u in syms.values())), pages[-1]))]:
                drv.get(url + page); time.sleep(1)                  # the whole page, up to 4000 px tall
                drv.set_window_size(1400, min(4000, drv.execute_script('return document.body.scrollHeight') + 140))
                time.sleep(0.5); drv.save_screenshot(str(shots/f'docs-{name}.png')); drv.set_window_size(1400, 1000)
                print(f'screenshot {shots}/docs-{name}.png ({page})')
        drv.get(url + 'index.html'); wait(drv, 'return document.readyState === "complete"')
        name = sorted(syms, key=lambda s: (s.count('.'), s))[0].split('.')[-1] if syms else cfg.lib_name
        want = syms[sorted(syms, key=lambda s: (s.count('.'), s))[0]] if syms else 'index.html'
        box = drv.find_element(By.CSS_SELECTOR, 'input.md-search__input'); box.click(); box.send_keys(name)
        page, _, frag = want.partition('#')
        found = wait(drv, """return [...document.querySelectorAll('.md-search-result__item a[href]')].map(a => new URL(a.href))
            .some(u => u.pathname.endsWith('/' + PAGE) && (!FRAG || u.hash === '#' + FRAG))"""
            .replace('PAGE', json.dumps(page)).replace('FRAG', json.dumps(frag)))
        check(f'search for {name!r} finds {want}', found)
        reqs = [json.loads(e['message'])['message'] for e in drv.get_log('performance')]
        urls = {m['params']['request']['url'] for m in reqs if m['method'] == 'Network.requestWillBeSent'}
        away = sorted(u for u in urls if re.match(r'(https?|wss?|ftp):', u) and not u.startswith(url))   # chrome:// is internal
        check(f'{len(urls)} requests, all to the local server', not away, f'{away[:5]}')
        errors = [e['message'] for e in drv.get_log('browser') if e['level'] == 'SEVERE']
        check('no console errors', not errors, f'{errors[:5]}')
    finally:
        drv.quit(); srv.shutdown(); shutil.rmtree(profile, ignore_errors=True)
    print(f'{results.count(True)} passed, {results.count(False)} failed')
    sys.exit(0 if all(results) else 1)

if __name__ == '__main__': main(sys.argv[1:])
