"""Build the documentation site (`docs/`) and `README.md` from the notebooks, offline, without Quarto.

    python tools/docs.py build           # docs/ and README.md (what `make docs` runs)
    python tools/docs.py check           # strict rebuild into build/, then: equal to the committed files,
                                         # every notebook has a page, every exported symbol an API entry,
                                         # no broken link or anchor, nothing fetched from the internet; API entries
                                         # in definition order, without inherited builtin docstrings, with no text
                                         # (`<think>`) lost as an HTML tag and no table row split by a `|`

nbdev renders docs with Quarto, which cannot be installed on our machines. This script keeps nbdev's semantics and
swaps only the renderer:
1. nbdev's own docs processors (`nbdev.processors.FilterDefaults`: frontmatter, hidden cells removed, `show_doc`
   entries added after export cells, backticked names linked) run in-process on each notebook, as `nbdev_docs` runs
   them before calling Quarto. Committed outputs are kept (nbdev re-executes import cells; we put back what the
   notebook shows; and, unlike nbdev, never runs cells flagged `#| gpu`, `#| slow`...); `show_doc` renders nbdev 2.3's API entry (signature, docstring, docments table, with `|` and `<...>` escaped,
   no docstring inherited from builtins); public methods of exported classes get an entry of their own, so that every
   symbol in `_modidx.py` has one; and entries come in definition order (nbdev inserts those of one cell in reverse).
2. Each processed notebook becomes one markdown page. Processed notebooks carry Quarto markdown (callouts, fenced
   divs, `{...}` attributes, `#| echo/output/include/code-fold` options, links to `.ipynb` and to the published
   site). No library translates that dialect, so `translate` below does it by hand, for two targets: Python-Markdown
   as mkdocs reads it (`site`) and GitHub-flavoured markdown (`gfm`).
3. mkdocs + Material render `docs/` (strict: a warning is an error), with page names as Quarto would give them
   (`00_boxes.ipynb` -> `boxes.html`, so nbdev's symbol links `boxes.html#iou` hold), MathJax served from the site
   itself, no web fonts. `index.ipynb` also becomes `README.md`, its figures referenced from `docs/`.
"""
import functools, hashlib, html.parser, io, json, logging, os, re, shutil, sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT/'build'
HTML_TAGS = set('''a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption cite code col
    colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6
    head header hgroup hr html i iframe img input ins kbd label legend li link main map mark math menu meta meter nav noscript
    object ol optgroup option output p param picture pre progress q rp rt ruby s samp script search section select slot small
    source span strong style sub summary sup svg table tbody td template textarea tfoot th thead time title tr track u ul var
    video wbr center font'''.split())           # HTML elements: any other `<tag>` in markdown is text (`<think>`), shown as such
EXPORTED = 'Exported source'            # the summary of an `#| export` cell's folded code on its page
SKIPPED = {'gpu': 'needs a GPU', 'slow': 'long run', 'notest': 'not run in tests'}   # tst_flags: cells the build never runs
ADMONITION = {'note': 'note', 'tip': 'tip', 'important': 'info', 'warning': 'warning', 'caution': 'danger'}

def cfg():
    from nbdev.config import get_config
    return get_config(path=ROOT)

def notebooks(nbs):
    "Notebooks in sidebar order, as `nbdev_sidebar` orders them: folder, then index first, then file name."
    from nbdev.doclinks import nbglob
    def key(p): return (p.parent.relative_to(nbs).parts, '' if p.stem == 'index' else p.name)
    return sorted(nbglob(nbs, func=Path, file_glob='*.ipynb', skip_folder_re=r'(?:^[_.]|^www$)'), key=key)

def page_of(rel):
    "Page for a notebook path relative to nbs/, named as Quarto names it for nbdev: 00_boxes.ipynb -> boxes.md."
    from nbdev.doclinks import _nbpath2html
    return _nbpath2html(Path(rel)).with_suffix('.md').as_posix()

def slug(text, sep='-'):
    "Heading ids as pandoc (Quarto) makes them, so `boxes.html#box.area` links from nbdev's index resolve."
    s = re.sub(r'<[^>]+>|&\w+;', '', text).strip().lower()
    s = re.sub(r'[^\w\s.-]', '', s)
    return re.sub(r'^[^a-z]+', '', re.sub(r'\s+', sep, s)) or 'section'

# ---------- 1. nbdev's processors, in a worker process ----------
def _pkg_obj(o):
    "The package's own class for one the docs shell defined: its source, hence its docments, is in the package."
    if getattr(o, '__module__', None) != '__main__': return o
    from importlib import import_module
    for mod, syms in import_module(f'{cfg().lib_name}._modidx').d['syms'].items():
        if f'{mod}.{o.__qualname__}' in syms:
            try: return getattr(import_module(mod), o.__qualname__)
            except Exception: return o
    return o

_CODE = re.compile(r'(`+)(?:.+?)\1|<https?://[^\s<>]+>')        # code spans and autolinks: markdown shows them as they are

def md_escape(text, cell=False):
    "Text that markdown shows literally: `<`, `>` as entities (not HTML tags), and, in a table `cell`, `|` escaped and no line breaks."
    if cell: text = ' '.join(str(text).splitlines())
    out, fence = [], None
    for line in str(text).split('\n'):
        f = re.match(r'^\s*(`{3,}|~{3,})', line)
        if fence or f:
            out.append(line)
            if f: fence = None if fence and f.group(1).startswith(fence) else fence or f.group(1)
            continue
        parts, last = [], 0
        for m in _CODE.finditer(line):
            parts += [_esc_plain(line[last:m.start()], cell), m.group(0)]; last = m.end()
        out.append(''.join(parts) + _esc_plain(line[last:], cell))
    return '\n'.join(out)

def _esc_plain(s, cell):
    s = s.replace('<', '&lt;').replace('>', '&gt;')
    return re.sub(r'(?<!\\)\|', r'\\|', s) if cell else s

@functools.lru_cache(None)
def builtin_docs():
    "First lines of the docstrings Python's builtins carry (`Call self as a function.`...): inherited, they say nothing."
    import builtins, inspect, types
    ts = {t for t in vars(builtins).values() if isinstance(t, type)} | {t for t in vars(types).values() if isinstance(t, type)}
    ts |= {type(object().__init__), type(object.__init__), type(object().__str__), type(len)}
    docs = set()
    for t in ts:
        for o in [t] + [getattr(t, a, None) for a in dir(t)]:
            d = getattr(o, '__doc__', None)
            if isinstance(d, str) and d.strip(): docs.add(inspect.cleandoc(d).splitlines()[0].strip())
    return docs

def own_doc(doc, builtin=None):
    "The docstring, unless it is builtin text that the object only inherited (or got from its `__call__`/`__init__`)."
    doc = doc or ''
    if not doc.strip(): return ''
    first = doc.strip().splitlines()[0].strip()
    return '' if first in (builtin_docs() if builtin is None else builtin) else doc

def docment_table(tbl):
    "fastcore's docments table, its cells escaped: a `|` in `int | None` or a `<think>` in a default no longer breaks the row."
    from fastcore.docments import _bold, _maybe_nm
    def row(cells): return '| ' + ' | '.join(md_escape(_maybe_nm(c), cell=True) for c in cells) + ' |'
    hdr = tbl._hdr_list
    rows = [row(hdr), row(['-' * len(l) for l in hdr])] + [row(r) for r in tbl._row_list]
    if tbl.has_return: rows.append(row(['**Returns**'] + [_bold(_maybe_nm(tbl.dm['return'][c])) for c in tbl._columns]))
    return '\n'.join(rows)

def _table_renderer():
    "nbdev 2.3's API entry (signature, docstring, docments table) in place of 2.4's commented signature."
    import inspect
    from fastcore.docments import DocmentTbl, DocmentText, _maybe_nm
    from nbdev.showdoc import BasicMarkdownRenderer
    class Renderer(BasicMarkdownRenderer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.docs = md_escape(own_doc(self.docs))        # no inherited builtin text; `<think>` shown, not parsed as HTML
        def _repr_markdown_(self):
            try:
                o, dt = self.sym, DocmentText(self.sym, docstring=False)
                if not callable(o): return super()._repr_markdown_()
                ps, ret = [p for p, _ in dt.params], dt.dm.get('return', {}).get('anno', inspect._empty)
                kind = 'class' if inspect.isclass(o) else 'async def' if inspect.iscoroutinefunction(o) else 'def'
                ret = '' if kind == 'class' or ret is inspect._empty else f' -> {_maybe_nm(ret)}'
                name = o.__name__ if kind == 'class' else self.nm.split('.')[-1]
                sig = f"{kind} {name}({', '.join(ps)}){ret}"
                if len(sig) > 100: sig = f"{kind} {name}(\n    " + ',\n    '.join(ps) + f"\n){ret}"
                md = super()._repr_markdown_().split('```python')[0] + f'```python\n{sig}\n```\n\n'
                if self.docs: md += f'*{self.docs.splitlines()[0]}*' + ''.join('\n' + l for l in self.docs.splitlines()[1:]) + '\n\n'
                tbl = DocmentTbl(_pkg_obj(o) if kind == 'class' else o)
                return md + (docment_table(tbl) if tbl.has_docment else '')
            except Exception: return super()._repr_markdown_()
    return Renderer

class MethodDocs:
    """Processor: a `show_doc` entry for each public method of an exported class that has none, after the class's; and the
    entries after each export cell in definition order (nbdev's `add_show_docs` inserts them in reverse)."""
    def __init__(self, nb): self.nb = nb
    def __call__(self, cell): pass
    def begin(self):
        import ast
        from execnb.nbio import mk_cell
        from nbdev.processors import _show_docs, _get_nm, showdoc_nm
        cells = self.nb.cells
        shown = {_get_nm(t) for c in cells if c.cell_type == 'code' for t in _show_docs(c.parsed_() or [])}
        for i in reversed(range(len(cells))):
            c = cells[i]
            if c.cell_type != 'code' or not {'export', 'exports'} & set(c.directives_) or 'hide' in c.directives_: continue
            j = i + 1
            while j < len(cells) and getattr(cells[j], 'has_sd', False): j += 1
            added = {_get_nm(t): d for d in cells[i + 1:j] for t in _show_docs(d.parsed_() or [])}
            ordered = []
            for t in c.parsed_() or []:
                if isinstance(t, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and showdoc_nm(t) in added:
                    ordered.append(added.pop(showdoc_nm(t)))
                if not isinstance(t, ast.ClassDef) or t.name[0] == '_': continue
                for m in [m for m in t.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]:
                    if m.name[0] == '_' or f'{t.name}.{m.name}' in shown: continue
                    new = mk_cell(f'show_doc({t.name}.{m.name})'); new.has_sd = True
                    ordered.append(new)
            cells[i + 1:j] = ordered + [d for d in cells[i + 1:j] if any(d is v for v in added.values())]   # others: as they were

def _mixed_imports(cell) -> bool:
    "An unexported cell with top-level imports *and* other code: nbdev would run it out of context (its FAQ warns); we don't."
    import ast
    if cell.cell_type != 'code' or cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'}: return False
    try: body = ast.parse(cell.source).body
    except SyntaxError: return False
    has_import = any(isinstance(n, (ast.Import, ast.ImportFrom)) for t in body for n in ast.walk(t))   # nbdev looks anywhere
    defs = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return has_import and any(not isinstance(t, defs) for t in body)

def process(path):
    "Run nbdev's docs processors on one notebook; return it as a plain dict. Committed outputs are kept."
    os.chdir(ROOT); sys.path.insert(0, str(ROOT))
    os.environ.update(IN_TEST='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg')
    import nbdev.showdoc, nbdev.processors as nbp
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults, add_show_docs
    nbdev.showdoc.BasicMarkdownRenderer = _table_renderer()
    flags, do_eval = set(cfg().get('tst_flags', '').split()), nbp._do_eval    # `#| gpu`/`#| slow` cells: never run
    nbp._do_eval = lambda cell: None if flags & set(cell.directives_) or _mixed_imports(cell) else do_eval(cell)
    from nbdev.frontmatter import _md2dict
    nb, warns = read_nb(path), []
    title = next((c for c in nb.cells if c.cell_type == 'markdown' and 'title' in _md2dict(c.source)), None)
    if title and [l for l in title.source.splitlines() if l.strip() and not re.match(r'#\s|>\s|-\s+\S.*:', l)]:
        warns.append(f'{Path(path).name}: nbdev drops the text after the title and summary in their cell: give it a cell of its own')
    kept = [(c, c.get('outputs')) for c in nb.cells if c.cell_type == 'code']
    procs = list(FilterDefaults().procs())
    procs.insert(procs.index(add_show_docs) + 1, MethodDocs)
    rm_export = next(f for f in procs if getattr(f, '__name__', '') == 'rm_export')
    def rm_export_keep_source(cell):    # nbdev's `rm_export`, except that an `#| export` cell's code stays, folded
        if cell.cell_type == 'code' and 'export' in cell.directives_ and 'hide' not in cell.directives_ and cell.source:
            cell['source'] = f'#| code-fold: true\n#| code-summary: "{EXPORTED}"\n' + cell.source
        else: rm_export(cell)
    procs[procs.index(rm_export)] = rm_export_keep_source
    from nbdev.process import NBProcessor
    try: NBProcessor(nb=nb, procs=procs).process()
    except Exception as e: raise RuntimeError(f'{path}: {e}') from e
    for c, outputs in kept:                          # show_doc cells keep their fresh output; the rest as committed
        if not re.match(r'show_doc\(', _split(c.get('source'))[1]): c['outputs'] = outputs
        skipped = [f for f in SKIPPED if f in flags & set(getattr(c, 'directives_', None) or {})]
        if skipped: c['skipped'] = skipped           # not run here: the page says so
    return json.loads(json.dumps({'cells': nb.cells, 'frontmatter': getattr(nb, 'frontmatter_', {}), 'warnings': warns}, default=str))

def process_all(paths, workers=2):
    "Processed notebooks, from a cache keyed by everything they depend on (build/docs-cache)."
    dep = hashlib.sha256(Path(__file__).read_bytes() + (ROOT/'settings.ini').read_bytes())
    for p in sorted((ROOT/cfg().lib_name).rglob('*.py')): dep.update(p.read_bytes())
    cache = BUILD/'docs-cache'; cache.mkdir(parents=True, exist_ok=True)
    keys = {p: cache/(hashlib.sha256(dep.digest() + p.read_bytes()).hexdigest() + '.json') for p in paths}
    todo = [p for p in paths if not keys[p].exists()]
    if todo:
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context('spawn')) as ex:
            for p, nb in zip(todo, ex.map(process, todo)): keys[p].write_text(json.dumps(nb))
    return {p: json.loads(keys[p].read_text()) for p in paths}

# ---------- 2. Quarto markdown -> Python-Markdown (site) or GitHub markdown (gfm) ----------
class Ctx:
    "Where a page sits: its path in the site, and how to link to other pages and the published site."
    def __init__(self, page, pages, doc_url, flavor, nb_dir='', doc_dir='docs'):
        self.page, self.pages, self.doc_url, self.flavor = page, pages, doc_url.rstrip('/'), flavor
        self.nb_dir, self.doc_dir = nb_dir, doc_dir
    def link(self, url):
        "Rewrite links to notebooks and to the published site: relative .md links (site) or site URLs (gfm)."
        if url.startswith(self.doc_url + '/'):
            target, _, frag = url[len(self.doc_url) + 1:].partition('#')
            if self.flavor == 'gfm' or not target.endswith('.html'): return url
            return os.path.relpath(Path(target).with_suffix('.md'), Path(self.page).parent or '.') + (f'#{frag}' if frag else '')
        m = re.match(r'^([^:#?]+\.ipynb)(#.*)?$', url)
        if not m: return url
        rel = os.path.normpath(os.path.join(self.nb_dir, m.group(1)))
        if rel not in self.pages: return url
        if self.flavor == 'gfm': return f'{self.doc_url}/{Path(self.pages[rel]).with_suffix(".html").as_posix()}{m.group(2) or ""}'
        return os.path.relpath(self.pages[rel], Path(self.page).parent or '.') + (m.group(2) or '')

def _attr_list(a):
    "Quarto attributes `{#id .class key=value}` as Python-Markdown's attr_list keeps them (the id only)."
    ids = re.findall(r'#([\w.:-]+)', a)
    return f'{{ #{ids[0]} }}' if ids else ''

def _inline(line, ctx):
    "Links, spans, images and their attributes on one line (outside code)."
    codes = []
    line = re.sub(r'(`+)(.+?)\1', lambda m: codes.append(m.group(0)) or f'\x00{len(codes)-1}\x00', line)
    line = re.sub(r'</?([A-Za-z][\w-]*)(?=[\s/>])[^<>]*>',                   # `<answer>` in prose: not an HTML element
                  lambda m: m.group(0) if m.group(1).lower() in HTML_TAGS else md_escape(m.group(0)), line)
    line = re.sub(r'(!?\[[^\]]*\])\(([^)\s]+)((?:\s+"[^"]*")?)\)(\{[^{}\n]*\})?',
                  lambda m: f'{m.group(1)}({ctx.link(m.group(2))}{m.group(3)})', line)
    line = re.sub(r'(?<![!\]\\])\[([^\]]+)\]\{[^{}\n]*\}', r'\1', line)          # [text]{.class} spans
    line = re.sub(r'\{\{<.*?>\}\}', lambda m: _fail(f'Quarto shortcode not supported: {m.group(0)}'), line)
    return re.sub('\x00(\\d+)\x00', lambda m: codes[int(m.group(1))], line)

def _fail(msg): raise ValueError(msg)

def _callout(kind, attrs, body, ctx):
    title = re.search(r'title="([^"]*)"', attrs)
    title = title.group(1) if title else None
    if body and re.match(r'#+\s', body[0]): title, body = re.sub(r'^#+\s+', '', body[0]).strip(), body[1:]
    body = '\n'.join(body).strip('\n').splitlines()
    if ctx.flavor == 'gfm':
        out = [f'> [!{kind.upper()}]'] + ([f'> **{title}**', '>'] if title else [])
        return out + [f'> {l}'.rstrip() for l in body]
    mark = '???' if 'collapse="true"' in attrs else '???+' if 'collapse=' in attrs else '!!!'
    return [f'{mark} {ADMONITION[kind]} "{title or kind.capitalize()}"', ''] + [f'    {l}'.rstrip() for l in body]

def _divs(lines, ctx):
    "Pandoc fenced divs (`::: {.callout-note}` ... `:::`), nested: callouts become admonitions or GitHub alerts."
    out, i = [], 0
    while i < len(lines):
        m = re.match(r'^(:{3,})\s*(\{[^}]*\}|[\w-]+)?\s*$', lines[i])
        if not m or not m.group(2): out.append(lines[i]); i += 1; continue
        depth, j, body = 1, i + 1, []
        while j < len(lines) and depth:
            n = re.match(r'^:{3,}\s*(\S*)', lines[j])
            if n: depth += 1 if n.group(1) else -1
            if depth: body.append(lines[j])
            j += 1
        if depth: _fail(f'unclosed fenced div: {lines[i]}')
        body = _divs(body, ctx)
        kind = re.search(r'callout-(note|tip|important|warning|caution)', m.group(2))
        out += ([''] + _callout(kind.group(1), m.group(2), body, ctx) + ['']) if kind else body
        i = j
    return out

def _python_markdown_blocks(lines):
    "Python-Markdown wants blank lines around lists, tables, fences and $$ maths, and 4-space list nesting (CommonMark: 2-3)."
    out, stack, fence, shift, math, gap = [], [], None, 0, False, False   # stack: (indent, content column) of open items
    for l in lines:
        ind, prev = len(l) - len(l.lstrip(' ')), out[-1] if out else ''
        f = re.match(r'^\s*(`{3,}|~{3,})', l)
        if fence:
            if f and f.group(1).startswith(fence): fence = None
            out.append(' ' * max(0, ind + shift) + l.lstrip(' ') if l.strip() else l); continue
        if math:
            out.append(l); math = not l.rstrip().endswith('$$'); gap = not math; continue
        if gap and l.strip(): out.append(''); prev = ''
        gap = False
        if l.lstrip().startswith('$$'):                               # display maths on its own lines
            if prev.strip(): out.append('')
            out.append(l); gap = l.strip() != '$$' and l.rstrip().endswith('$$'); math = not gap; continue
        m = re.match(r'^(\s*)([-*+]|\d+\.)(\s+)', l)
        if (f or l.lstrip().startswith('|') and not prev.lstrip().startswith('|') or m and not stack) and prev.strip():
            out.append('')
        if m:
            while stack and stack[-1][0] > ind: stack.pop()
            if stack and stack[-1][0] == ind: stack[-1] = (ind, len(m.group(0)))
            else: stack.append((ind, len(m.group(0))))
            l = '    ' * (len(stack) - 1) + l.lstrip(' ')
        elif l.strip() and stack:
            if ind == 0 and not prev.strip(): stack = []
            else:
                inside = [s for s in stack if s[1] <= ind] or stack[:1]
                shift = 4 * len(inside) - inside[-1][1]
                l = ' ' * max(0, ind + shift) + l.lstrip(' ')
        if f: fence, shift = f.group(1), (shift if stack else 0)
        out.append(l)
    return out

def translate(md, ctx):
    "Quarto markdown (as nbdev's processors leave it) to Python-Markdown (`site`) or GitHub markdown (`gfm`)."
    lines, out, fence = md.splitlines(), [], None
    for l in lines:
        m = re.match(r'^(\s*)(`{3,}|~{3,})\s*(.*)$', l)
        if fence:
            out.append(l)
            if m and m.group(2).startswith(fence) and not m.group(3): fence = None
            continue
        if m:
            fence, info = m.group(2), m.group(3)
            lang = re.sub(r'^\{?\.?([\w+-]*).*$', r'\1', info) if info else ''
            out.append(f'{m.group(1)}{fence}{lang}'); continue
        h = re.match(r'^(#{1,6}\s.*?)\s*(\{\s*[#.][^{}]*\}|\{[^{}]*=[^{}]*\})\s*$', l)
        if h: l = (h.group(1) + ' ' + (_attr_list(h.group(2)) if ctx.flavor == 'site' else '')).rstrip()
        out.append(_inline(l, ctx))
    if ctx.flavor == 'site': out = _python_markdown_blocks(out)
    out = _divs(out, ctx)
    return '\n'.join(out)

# ---------- notebook -> markdown page ----------
def _split(src):
    "Leading `#| key: value` cell options, and the code without them."
    opts, lines = {}, (src or '').splitlines()
    while lines and re.match(r'^\s*#\|', lines[0]):
        k, _, v = lines.pop(0).split('|', 1)[1].strip().partition(':')
        opts[k.strip()] = v.strip().strip('"\'')
    return opts, '\n'.join(lines).strip('\n')

def _text(o, key='text'):
    t = o.get(key, '')
    return ''.join(t) if isinstance(t, list) else t

def _fence(text, ctx, cls='output'):
    text = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', text).rstrip('\n')
    n = max([3] + [len(x) + 1 for x in re.findall(r'`{3,}', text)])
    return f"{'`' * n}{'text' if ctx.flavor == 'gfm' else '{ .text .' + cls + ' }'}\n{text}\n{'`' * n}"

def render(nb, ctx, files):
    "One processed notebook as a markdown page; figures go to `files` (site path -> bytes)."
    import base64
    fm, parts, stem = nb['frontmatter'], [], Path(ctx.page).stem
    title = fm.get('title') or stem
    parts.append(f'# {title}' if ctx.flavor == 'gfm' else f'---\ntitle: {json.dumps(title)}\n---\n\n# {title} {{ #_title }}')    # no slug starts with "_"
    if fm.get('description'): parts.append(f"> {fm['description']}")
    prev_md = ''
    for i, c in enumerate(nb['cells']):
        src = _text(c, 'source')
        if c['cell_type'] == 'markdown':
            if ctx.flavor == 'site' and src.startswith('<!-- WARNING'): continue
            for name, data in (c.get('attachments') or {}).items():
                for mime, b64 in data.items():
                    f = f"{stem}_files/cell-{i}-{name}"; files[f] = base64.b64decode(b64)
                    src = src.replace(f'attachment:{name}', _img_path(f, ctx))
            parts.append(translate(src, ctx)); prev_md = src
        if c['cell_type'] != 'code': continue
        opts, code = _split(src)
        if opts.get('include') == 'false': continue
        is_doc = bool(re.match(r'show_doc\(', code))
        if code and opts.get('echo') != 'false' and not is_doc:
            lang = (c.get('metadata') or {}).get('language', 'python')
            block = f'```{lang}\n{code}\n```'
            if opts.get('code-fold') and ctx.flavor == 'site':
                mark = '???+' if opts['code-fold'] == 'show' else '???'
                block = f'{mark} source "{opts.get("code-summary", "Code")}"\n\n' + re.sub('(?m)^', '    ', block)
            parts.append(block)
        if c.get('skipped') and code and opts.get('echo') != 'false' and not _says_skipped(prev_md, c['skipped']):
            note = f"*{skipped_note(c['skipped'], bool(c.get('outputs')))}*"
            parts.append(note + ('\n{: .cell-skipped }' if ctx.flavor == 'site' else ''))
        if opts.get('output') == 'false': continue
        for j, o in enumerate(c.get('outputs') or []):
            parts.append(_output(o, opts, ctx, files, f'{stem}_files/cell-{i}-output-{j + 1}', is_doc))
    return '\n\n'.join(p for p in parts if p and p.strip()) + '\n'

def skipped_note(flags, has_output=False):
    "The line under a `#| gpu`/`#| slow` cell's code: the docs build did not run it."
    return (f"Not run when this page was built ({', '.join(SKIPPED[f] for f in flags)})"
            + ('; the output below is the one committed.' if has_output else '.'))

def _says_skipped(md, flags):
    "Does the markdown just before the cell already say it is flagged (`#| gpu`, \"flagged slow\")?"
    return all(re.search(rf'#\|\s*{f}\b|flagged\s+`?{f}\b', md, re.I) for f in flags)

def _img_path(f, ctx):
    "Figures live next to the page in the site; README.md refers to them inside docs/."
    return f if ctx.flavor == 'site' else f'{ctx.doc_dir}/{(Path(ctx.page).parent / f).as_posix()}'

def _output(o, opts, ctx, files, base, is_doc):
    import base64
    t = o.get('output_type')
    if t == 'stream': return _fence(_text(o), ctx, 'output stderr' if o.get('name') == 'stderr' else 'output')
    if t == 'error': return _fence('\n'.join(o.get('traceback', [])), ctx, 'output error')
    d = o.get('data', {})
    if 'text/markdown' in d:
        md = translate(_text(d, 'text/markdown'), ctx)
        if is_doc: return _api_entry(md, ctx)
        return md
    for mime, ext in [('image/png', 'png'), ('image/jpeg', 'jpg'), ('image/svg+xml', 'svg'), ('image/gif', 'gif')]:
        if mime not in d: continue
        raw = _text(d, mime)
        files[f'{base}.{ext}'] = raw.encode() if ext == 'svg' else base64.b64decode(raw)
        w = (o.get('metadata', {}).get(mime) or {}).get('width')
        alt = opts.get('fig-cap') or opts.get('fig-alt') or ''
        img = f'![{alt}]({_img_path(f"{base}.{ext}", ctx)})'
        if w: img += f'{{ width="{w}" }}' if ctx.flavor == 'site' else ''
        return img + (f'\n\n*{alt}*' if opts.get('fig-cap') else '')
    if 'text/html' in d:
        h = _text(d, 'text/html').strip()
        return f'<div class="output-html" markdown="0">\n{h}\n</div>' if ctx.flavor == 'site' else h
    if 'text/latex' in d: return _text(d, 'text/latex')
    if 'text/plain' in d: return _fence(_text(d, 'text/plain'), ctx)
    return ''

def _api_entry(md, ctx):
    "An API entry from `show_doc`: the source link moves into the heading row; the entry gets a box (site)."
    md = re.sub(r'^---\s*\n', '', md.lstrip())
    src = re.search(r'^\[source\]\(([^)]+)\)\s*$', md, re.M)
    md = re.sub(r'^\[source\]\([^)]+\)\s*\n', '', md, flags=re.M).strip()
    if ctx.flavor == 'gfm': return md + (f'\n\n[source]({src.group(1)})' if src else '')
    md = re.sub(r'^(#+ .*?)( \{ #[^}]*\})?$', lambda m: m.group(1) + ' { .api-name }', md, count=1, flags=re.M)
    link = f'[source]({src.group(1)}){{ .api-source target="_blank" }}\n\n' if src else ''
    return f'<div class="api-entry" markdown>\n\n{link}{md}\n\n</div>'

# ---------- 3. the site and the README ----------
def build(site, readme):
    "Process the notebooks, write their pages, render the site with mkdocs (strict), write the README."
    import time
    from mkdocs.commands.build import build as mkdocs_build
    t0, c = time.time(), cfg()
    nbs, doc_url = c.nbs_path, c.doc_host.rstrip('/') + '/' + c.doc_baseurl.strip('/')
    paths = notebooks(nbs)
    pages = {p.relative_to(nbs).as_posix(): page_of(p.relative_to(nbs)) for p in paths}
    processed = process_all(paths)
    warns = [w for nb in processed.values() for w in nb.get('warnings', [])]
    for w in warns: print('WARNING', w)
    print(f'processed {len(paths)} notebooks in {time.time() - t0:.1f}s')
    src = BUILD/'docs-src'
    shutil.rmtree(src, ignore_errors=True)
    nav, files = [], {}
    for p in paths:
        rel = p.relative_to(nbs).as_posix(); page = pages[rel]
        ctx = Ctx(page, pages, doc_url, 'site', nb_dir=os.path.dirname(rel))
        nb_files = {}
        md = render(processed[p], ctx, nb_files)
        for f in re.findall(r'!\[[^\]]*\]\(([^)\s:]+)\)', md):           # images that sit beside the notebooks
            if (p.parent/f).is_file() and f not in nb_files: nb_files[f] = (p.parent/f).read_bytes()
        files.update({(Path(page).parent/f).as_posix(): b for f, b in nb_files.items()})
        (src/page).parent.mkdir(parents=True, exist_ok=True); (src/page).write_text(md)
        title = processed[p]['frontmatter'].get('title') or Path(page).stem
        nav.append((Path(rel).parent.parts, {title: page}))
        if p.stem == Path(c.readme_nb).stem and p.parent == nbs:
            readme.write_text(render(processed[p], Ctx(page, pages, doc_url, 'gfm', doc_dir=c.doc_path.name), {}))
    for f, b in files.items(): (src/f).parent.mkdir(parents=True, exist_ok=True); (src/f).write_bytes(b)
    assets = Path(__file__).parent/'docs_assets'
    shutil.copytree(assets, src/'assets', ignore=shutil.ignore_patterns('overrides'))    # overrides: theme templates
    mj = Path(__import__('mathjax').__file__).parent/'static'/'mathjax'
    (src/'assets'/'mathjax').mkdir(); shutil.copy(mj/'es5'/'tex-svg-full.js', src/'assets'/'mathjax')
    if (mj/'LICENSE').exists(): shutil.copy(mj/'LICENSE', src/'assets'/'mathjax')
    mkdocs_build(mkdocs_config(c, src, site, _nest(nav)))
    for f in ['sitemap.xml', 'sitemap.xml.gz']: (site/f).unlink(missing_ok=True)    # build dates: not reproducible
    (site/'.nojekyll').write_text('')
    print(f'built {site.relative_to(ROOT)}/ and {readme.name} in {time.time() - t0:.1f}s')
    return warns

def _nest(nav):
    "Notebooks in sub-folders of nbs/ become nav sections, as in nbdev's sidebar."
    out = []
    for parts, item in nav:
        level = out
        for d in parts:
            name = re.sub(r'^\d+[a-zA-Z0-9]*_', '', d)
            sec = next((s for s in level if isinstance(s, dict) and name in s and isinstance(s[name], list)), None)
            if sec is None: sec = {name: []}; level.append(sec)
            level = sec[name]
        level.append(item)
    return out

def mkdocs_config(c, src, site, nav):
    from mkdocs.config import load_config
    warn = 'warn'
    return load_config(
        config_file=io.StringIO('{}'), site_name=c.title, site_description=c.description,
        site_url=c.doc_host.rstrip('/') + '/' + c.doc_baseurl.strip('/') + '/', copyright='© ' + c.copyright,
        docs_dir=str(src), site_dir=str(site), use_directory_urls=False, strict=True, nav=nav,
        repo_url=c.git_url, repo_name=re.sub(r'^https?://[^/]+/|\.git$|/$', '', c.git_url), edit_uri='',
        theme={'name': 'material', 'font': False, 'language': 'en', 'icon': {'repo': 'fontawesome/brands/github'},
               'custom_dir': str(Path(__file__).parent/'docs_assets'/'overrides'),   # the header's repository link: no API calls
               'features': ['navigation.top', 'navigation.sections', 'search.highlight', 'content.code.copy', 'toc.follow'],
               'palette': {'primary': 'indigo', 'accent': 'indigo'}},
        plugins=['search'], extra={'generator': False, 'social': [{'icon': 'fontawesome/brands/github', 'link': c.git_url}]},
        extra_css=['assets/locus.css'], extra_javascript=['assets/mathjax-config.js', 'assets/mathjax/tex-svg-full.js'],
        markdown_extensions=['admonition', 'attr_list', 'md_in_html', 'tables', 'footnotes', 'pymdownx.details',
                             {'toc': {'permalink': True, 'slugify': slug}},
                             {'pymdownx.highlight': {'use_pygments': True}}, 'pymdownx.superfences',
                             {'pymdownx.arithmatex': {'generic': True}}],
        validation={'nav': {'omitted_files': warn, 'not_found': warn, 'absolute_links': warn},
                    'links': {'not_found': warn, 'anchors': warn, 'absolute_links': warn, 'unrecognized_links': warn}})

# ---------- checks ----------
class _Html(html.parser.HTMLParser):
    "A built page: ids, links, API entries (anchors, source links, emphasised docstrings) and text-like tags in the article."
    def __init__(self):
        super().__init__(); self.ids, self.refs, self.api, self.nav, self.text = set(), [], set(), [], []
        self.divs, self.sources, self.docs, self.unknown, self._em, self._article, self._svg = [], [], [], [], None, 0, 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs); cls = (a.get('class') or '').split()
        if tag == 'a' and 'md-nav__link' in cls and (a.get('href') or '').endswith('.html'):
            self.nav.append(a['href'])
        for k in ('id', 'name') if tag == 'a' else ('id',):
            if a.get(k): self.ids.add(a[k])
        if a.get('id') and 'api-name' in cls: self.api.add(a['id'])
        for k in ('href', 'src'):
            if a.get(k) is not None: self.refs.append((tag, a.get('rel') or '', a[k]))
        if tag == 'div': self.divs.append('api-entry' in cls)
        in_api = any(self.divs)
        if in_api and tag == 'a' and 'api-source' in cls: self.sources.append(a.get('href') or '')
        if in_api and tag == 'em' and self._em is None: self._em = []
        if tag == 'article': self._article += 1
        elif tag == 'svg': self._svg += 1
        elif self._article and not self._svg and tag not in HTML_TAGS: self.unknown.append(tag)
    def handle_endtag(self, tag):
        if tag == 'div' and self.divs: self.divs.pop()
        if tag == 'em' and self._em is not None: self.docs.append(''.join(self._em).strip()); self._em = None
        if tag == 'article': self._article -= 1
        if tag == 'svg': self._svg -= 1
    def handle_data(self, data):
        if self._em is not None: self._em.append(data)
        if self._article: self.text.append(data)

def check_page(name, text):
    """One built page's API entries: no inherited builtin docstring (`Call self as a function.`), no `<think>` in the text
    parsed as an HTML tag (hence invisible), entries in definition order (their source links' line numbers ascend per file)."""
    p = text if isinstance(text, _Html) else _Html()
    if not isinstance(text, _Html): p.feed(text)
    errs = [f'{name}: <{t}> is parsed as an HTML tag, so it does not show: escape it' for t in dict.fromkeys(p.unknown)]
    errs += [f'{name}: an API entry shows inherited builtin text as its docstring: "{d}"' for d in p.docs if d in builtin_docs()]
    last = {}
    for ref in p.sources:
        f, _, line = ref.partition('#L')
        if not line.isdigit(): continue
        if int(line) < last.get(f, (0, ''))[0]:
            errs.append(f'{name}: API entry {ref} comes after {last[f][1]}: not in definition order'); break
        last[f] = (int(line), ref)
    return errs

def _directives(src):
    "The `#| ...` directives a cell starts with, by name."
    out = {}
    for l in src.splitlines():
        m = re.match(r'^\s*#\|\s*([\w-]+)', l)
        if not m: break
        out[m.group(1)] = l
    return out

def check_cells(name, nb, text, c):
    """A built page against its notebook: the code of each `#| export` cell is on it (folded), and each cell the build does not
    run (`#| gpu`, `#| slow`) is marked as such."""
    from execnb.nbio import read_nb
    errs, flags = [], set(c.get('tst_flags', '').split()) & set(SKIPPED)
    for cell in read_nb(nb).cells:
        d = _directives(cell.source) if cell.cell_type == 'code' else {}
        if 'export' not in d or 'hide' in d: continue
        code = [l.strip() for l in cell.source.splitlines() if l.strip() and not re.match(r'^\s*#\|', l)]
        missing = [l for l in code if l not in text]
        if missing: errs.append(f'{name}: the code of an `#| export` cell is not on the page: {missing[0][:80]}')
    want, prev = 0, ''
    for cell in read_nb(nb).cells:
        if cell.cell_type == 'markdown': prev = cell.source; continue
        d = _directives(cell.source) if cell.cell_type == 'code' else {}
        f = [k for k in SKIPPED if k in flags & set(d)]
        if f and not re.search(r'echo:\s*false|include:\s*false', ' '.join(d.values())) and not _says_skipped(prev, f): want += 1
    if text.count('Not run when this page was built') < want:
        errs.append(f'{name}: {want} cell(s) flagged {"/".join(sorted(flags))} that the build does not run, '
                    f'{text.count("Not run when this page was built")} marked as not run')
    return errs

def _cells(row):
    "Cells of a markdown table row as Python-Markdown splits it: at `|`, except escaped `\\|` and `|` inside code spans."
    row = re.sub(r'(`+)(.+?)\1', lambda m: 'x' * len(m.group(0)), row.strip())
    return re.split(r'(?<!\\)\|', re.sub(r'^\||(?<!\\)\|$', '', row))

def check_tables(name, md):
    "Every row of every table in a markdown page has as many cells as the header: `int | None` unescaped splits a row."
    errs, header, fence = [], None, None
    for i, l in enumerate(md.splitlines(), 1):
        f = re.match(r'^\s*(`{3,}|~{3,})', l)
        if fence or f:
            if f: fence = None if fence and f.group(1).startswith(fence) else fence or f.group(1)
            header = None; continue
        if not l.lstrip().startswith('|'): header = None; continue
        if header is None: header = len(_cells(l)); continue
        if len(_cells(l)) != header:
            errs.append(f'{name}:{i}: table row has {len(_cells(l))} cells, its header {header} (a `|` not escaped?): {l.strip()[:80]}')
    return errs

def check_site(site, c):
    "Every notebook has a page in the nav, every public exported symbol an API entry, no link or anchor broken."
    from urllib.parse import urljoin, urlparse, unquote
    errs, parsed = [], {}
    for f in sorted(site.rglob('*.html')):
        p = _Html(); p.feed(f.read_text(encoding='utf-8')); parsed[f.relative_to(site).as_posix()] = p
    nbs, want = c.nbs_path, []
    for nb in notebooks(nbs):
        want.append(Path(page_of(nb.relative_to(nbs))).with_suffix('.html').as_posix())
        if want[-1] not in parsed: errs.append(f'{nb.name}: no page {want[-1]}')
    nav = list(dict.fromkeys(os.path.normpath(h) for h in parsed['index.html'].nav)) if 'index.html' in parsed else []
    if nav != want: errs.append(f'navigation {nav} is not the notebooks in order {want}')
    syms = {}
    sys.path.insert(0, str(ROOT))
    modidx = __import__(f'{c.lib_name}._modidx', fromlist=['d']).d
    for mod in modidx['syms'].values(): syms.update(mod)
    for sym, (url, _) in sorted(syms.items()):
        page, _, anchor = url.partition('#')
        public = not any(s.startswith('_') for s in sym.split('.'))
        if page not in parsed: errs.append(f'{sym}: its page {page} does not exist')
        elif public and anchor not in parsed[page].api: errs.append(f'{sym}: no API entry {url}')
    blob, base = c.git_url.rstrip('/') + f'/blob/{c.branch}/', '/' + c.doc_baseurl.strip('/') + '/'
    for name, p in parsed.items():
        for tag, rel, ref in p.refs:
            u = urlparse(ref)
            if u.scheme in ('http', 'https'):
                if tag in ('script', 'img', 'iframe', 'source', 'video', 'audio') or tag == 'link' and rel != 'canonical':
                    errs.append(f'{name}: fetches {ref} from the internet')
                if ref.startswith(blob):
                    f, _, line = ref[len(blob):].partition('#L')
                    lines = (ROOT/f).read_text().count('\n') + 1 if (ROOT/f).is_file() else 0
                    if not lines or line and int(line) > lines: errs.append(f'{name}: source link {ref} is broken')
                continue
            if u.scheme or ref.startswith('//'): continue
            if ref.startswith(base): ref, u = ref[len(base):], urlparse(ref[len(base):])   # 404.html: site-absolute
            target = unquote(urlparse(urljoin(name, ref)).path) if u.path else name
            if target.endswith('/'): target += 'index.html'
            if not (site/target).is_file(): errs.append(f'{name}: broken link {ref}')
            elif u.fragment and target.endswith('.html') and u.fragment not in parsed[target].ids:
                errs.append(f'{name}: broken anchor {ref}')
    for name, p in parsed.items(): errs += check_page(name, p)
    for nb in notebooks(nbs):
        page = Path(page_of(nb.relative_to(nbs))).with_suffix('.html').as_posix()
        if page in parsed: errs += check_cells(page, nb, ''.join(parsed[page].text), c)
    for css in site.rglob('*.css'):
        if re.search(r'url\(\s*["\']?(https?:)?//', css.read_text(encoding='utf-8')): errs.append(f'{css}: fetches from the internet')
    return errs + check_dataframe_style(site)

def check_dataframe_style(site):
    "DataFrame tables (class `dataframe`, which Material's table rules skip) need the site's own `table.dataframe` style."
    frames = sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html') if 'class="dataframe"' in p.read_text(encoding='utf-8'))
    css = ''.join(p.read_text(encoding='utf-8') for p in site.rglob('*.css'))
    if frames and 'table.dataframe' not in css:
        return [f'{frames[0]}: DataFrame tables on {len(frames)} page(s) but no `table.dataframe` style: they render unstyled']
    return []

def check_readme(text, root):
    "README.md: GitHub markdown with no nbdev or Quarto leftovers, code fences with a language, local files present."
    errs, fence = [], None
    for i, l in enumerate(text.splitlines(), 1):
        f = re.match(r'^\s*(`{3,}|~{3,})(.*)$', l)
        if fence:
            if f and f.group(1).startswith(fence) and not f.group(2).strip(): fence = None
            continue
        if f:
            fence = f.group(1)
            if not f.group(2).strip(): errs.append(f'README.md:{i}: code fence without a language')
            continue
        if re.search(r'^\s*:::|#\|\s*\w|\]\{|\{[.#]|\{\w+=|\{\{<|callout-|\.ipynb\b', l):
            errs.append(f'README.md:{i}: nbdev/Quarto syntax left: {l.strip()[:80]}')
        for ref in re.findall(r'!?\[[^\]]*\]\(([^)\s]+)', l) + re.findall(r'<img[^>]*src="([^"]+)"', l):
            if '://' not in ref and not ref.startswith(('#', 'mailto:')) and not (root/ref.split('#')[0]).exists():
                errs.append(f'README.md:{i}: missing file {ref}')
    return errs

def _diff(a, b):
    fa = {p.relative_to(a).as_posix() for p in a.rglob('*') if p.is_file()}
    fb = {p.relative_to(b).as_posix() for p in b.rglob('*') if p.is_file()} if b.exists() else set()
    return sorted(fa ^ fb) + sorted(f for f in fa & fb if (a/f).read_bytes() != (b/f).read_bytes())

def main(cmd='build'):
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    logging.getLogger('mkdocs').setLevel(logging.INFO)
    c = cfg()
    if cmd == 'build': return build(c.doc_path, ROOT/'README.md')
    if cmd != 'check': sys.exit(__doc__)
    out = BUILD/'docs-check'; shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
    errs = build(out/'site', out/'README.md')
    errs += check_site(out/'site', c) + check_readme((out/'README.md').read_text(), ROOT)
    errs += [e for f in sorted((BUILD/'docs-src').rglob('*.md')) for e in check_tables(f.relative_to(BUILD/'docs-src').as_posix(), f.read_text())]
    stale = _diff(out/'site', c.doc_path)
    if (out/'README.md').read_text() != ((ROOT/'README.md').read_text() if (ROOT/'README.md').exists() else ''): stale.append('README.md')
    errs += [f'out of date: {f} (run `make docs` and commit docs/ and README.md)' for f in stale[:20]]
    for e in errs: print('ERROR', e)
    print(f'docs check: {len(errs)} problem(s); {len(notebooks(c.nbs_path))} notebooks, site and README checked')
    sys.exit(1 if errs else 0)

if __name__ == '__main__':          # run as the module `docs`: workers unpickle `docs.process` (IPython replaces __main__)
    sys.path.insert(0, str(Path(__file__).parent)); import docs; docs.main(*sys.argv[1:2])
