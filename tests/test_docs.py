"Tests for tools/docs.py: the Quarto-markdown translation, notebook -> page rendering, README checks, nbdev processing."
import os, re, sys
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))         # as a module named `docs`, so worker processes can import it too
import docs

URL = 'https://locus-vlm.github.io/locus'
PAGES = {'index.ipynb': 'index.md', '00_boxes.ipynb': 'boxes.md', '90_testbench.ipynb': 'testbench.md',
         'extra/05_probe.ipynb': 'extra/probe.md'}
def site(md, page='testbench.md', nb_dir=''): return docs.translate(md, docs.Ctx(page, PAGES, URL, 'site', nb_dir))
def gfm(md, page='index.md'): return docs.translate(md, docs.Ctx(page, PAGES, URL, 'gfm'))

def html(md):
    "Render as mkdocs does (same markdown extensions)."
    markdown = pytest.importorskip('markdown'); pytest.importorskip('pymdownx')
    exts = ['admonition', 'attr_list', 'md_in_html', 'tables', 'pymdownx.details', 'pymdownx.superfences', 'pymdownx.arithmatex']
    return markdown.markdown(md, extensions=exts, extension_configs={'pymdownx.arithmatex': {'generic': True}})

CALLOUT = '::: {.callout-note}\n## Why not GIoU?\nPlain IoU, as in the paper.\n:::'

def test_callout_site_is_an_admonition():
    out = site(CALLOUT)
    assert '!!! note "Why not GIoU?"' in out and '    Plain IoU, as in the paper.' in out and ':::' not in out
    h = html(out)
    assert 'class="admonition note"' in h and 'Why not GIoU?</p>' in h

def test_callout_kinds_titles_and_collapse():
    assert '!!! info "Important"' in site(':::{.callout-important}\nx\n:::')
    assert '!!! danger "Caution"' in site('::: callout-caution\nx\n:::')
    assert '??? tip "Hint"' in site('::: {.callout-tip title="Hint" collapse="true"}\nx\n:::')

def test_callout_gfm_is_a_github_alert():
    assert gfm(CALLOUT).strip().splitlines() == ['> [!NOTE]', '> **Why not GIoU?**', '>', '> Plain IoU, as in the paper.']
    assert gfm('::: {.callout-warning}\nCareful.\n:::').strip().splitlines() == ['> [!WARNING]', '> Careful.']

def test_nested_and_plain_divs():
    out = site('::: {.py-2 .border}\nbefore\n\n::: {.callout-tip}\ninner\n:::\n\nafter\n:::')
    assert ':::' not in out and 'before' in out and 'after' in out and '    inner' in out
    with pytest.raises(ValueError, match='unclosed'): site('::: {.callout-tip}\nnever closed')

def test_attributes_spans_and_shortcodes():
    assert site('[paper](https://arxiv.org/abs/1){target="_blank"} and [word]{.mark}') == \
        '[paper](https://arxiv.org/abs/1) and word'
    assert site('## Setup {#setup .unnumbered}') == '## Setup { #setup }'
    assert gfm('## Setup {#setup .unnumbered}') == '## Setup'
    assert site('## Appendix {.unnumbered}') == '## Appendix'
    assert gfm('![fig](a.png){width=50%}') == '![fig](a.png)'
    assert site('`{x}` and `[a]{.b}`') == '`{x}` and `[a]{.b}`'           # code spans untouched
    with pytest.raises(ValueError, match='shortcode'): site('{{< video a.mp4 >}}')

def test_code_fences():
    assert site('```{python}\nx = {1: 2}\n```') == '```python\nx = {1: 2}\n```'
    assert gfm('```{.bash filename="run.sh"}\nmake\n```') == '```bash\nmake\n```'
    assert site('````\n```\n:::\n````') == '````\n```\n:::\n````'           # fence contents are not translated

def test_links_to_notebooks_and_to_the_published_site():
    assert site('[boxes](00_boxes.ipynb#iou)') == '[boxes](boxes.md#iou)'
    assert site('[probe](extra/05_probe.ipynb)', page='index.md') == '[probe](extra/probe.md)'
    assert site('[boxes](../00_boxes.ipynb)', page='extra/probe.md', nb_dir='extra') == '[boxes](../boxes.md)'
    assert site(f'[`iou`]({URL}/boxes.html#iou)') == '[`iou`](boxes.md#iou)'       # nbdev's autolinks
    assert gfm('[boxes](00_boxes.ipynb#iou)') == f'[boxes]({URL}/boxes.html#iou)'
    assert gfm(f'[`iou`]({URL}/boxes.html#iou)') == f'[`iou`]({URL}/boxes.html#iou)'
    assert site('[missing](99_nope.ipynb)') == '[missing](99_nope.ipynb)'   # left for mkdocs' strict check to report

def test_blocks_python_markdown_needs():
    h = html(site('Steps:\n- one\n  - nested\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |'))
    assert re.search(r'<li>one<ul>\s*<li>nested</li>', h) and '<table>' in h
    h = html(site('Text\n$$\nx_1 + y\n$$\nmore'))
    assert '<div class="arithmatex">' in h and '<p>more</p>' in h
    h = html(site('- item\n\n  ```python\n  def f():\n      return 1\n  ```'))
    assert '    <span class="k">return</span>' in h                 # code inside a list keeps its indentation

def test_slug_is_pandocs():
    assert docs.slug('Box.area') == 'box.area' and docs.slug('IoU against shift') == 'iou-against-shift'
    assert docs.slug('2. The `reward` (r)') == 'the-reward-r' and docs.slug('scale_box') == 'scale_box'

def test_page_names_as_quarto_gives_them():
    assert [docs.page_of(p) for p in PAGES] == list(PAGES.values())

def cell(src, outputs=(), kind='code'):
    return {'cell_type': kind, 'source': src, 'metadata': {'language': 'python'}, 'outputs': list(outputs)}

NB = {'frontmatter': {'title': 'Testbench', 'description': 'Checks.'}, 'cells': [
    cell('<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->', kind='markdown'),
    cell('#| echo: false\n#| output: asis\nshow_doc(f)', [{'output_type': 'execute_result', 'data': {'text/markdown':
        '---\n\n[source](https://github.com/x/y/blob/main/y/a.py#L3){target="_blank" style="float:right"}\n\n### f\n\n'
        '```python\ndef f(x:int)\n```\n\n*Do f.*\n\n|    | **Type** | **Details** |\n| -- | -- | -- |\n| x | int | an x |'}}]),
    cell('#| code-fold: show\n#| code-summary: "Exported source"\ndef f(x): pass'),
    cell('#| echo: false\nprint(1)', [{'output_type': 'stream', 'name': 'stdout', 'text': ['\x1b[31m1\x1b[0m\n']}]),
    cell('#| output: false\nprint(2)', [{'output_type': 'stream', 'name': 'stdout', 'text': '2\n'}]),
    cell('#| include: false\nprint(3)', [{'output_type': 'stream', 'name': 'stdout', 'text': '3\n'}]),
    cell('plt.show()', [{'output_type': 'display_data', 'data': {'image/png': 'iVBORw0KGgo=', 'text/plain': '<Figure>'}}]),
    cell('df', [{'output_type': 'execute_result', 'data': {'text/html': '<table><tr><td>1</td></tr></table>', 'text/plain': 'x'}}]),
    cell('1/0', [{'output_type': 'error', 'ename': 'ZeroDivisionError', 'evalue': '', 'traceback': ['\x1b[31mZeroDivisionError\x1b[0m']}]),
]}

def test_render_site_page():
    files = {}
    md = docs.render(NB, docs.Ctx('testbench.md', PAGES, URL, 'site'), files)
    assert md.startswith('---\ntitle: "Testbench"\n---\n\n# Testbench { #_title }\n\n> Checks.')
    assert 'WARNING' not in md and 'show_doc' not in md and '#|' not in md
    assert '<div class="api-entry" markdown>' in md and '### f { .api-name }' in md
    assert '[source](https://github.com/x/y/blob/main/y/a.py#L3){ .api-source target="_blank" }' in md
    assert '???+ source "Exported source"\n\n    ```python\n    def f(x): pass\n    ```' in md
    assert '```{ .text .output }\n1\n```' in md and 'print(1)' not in md        # echo: false, ANSI stripped
    assert 'print(2)' in md and '\n2\n' not in md                                  # output: false
    assert 'print(3)' not in md                                                      # include: false
    assert '![](testbench_files/cell-6-output-1.png)' in md and files == {'testbench_files/cell-6-output-1.png': b'\x89PNG\r\n\x1a\n'}
    assert '<div class="output-html" markdown="0">\n<table>' in md and 'ZeroDivisionError' in md
    h = html(md.split('---\n', 2)[2])
    assert '<table>' in h and 'class="api-entry"' in h

def test_render_readme_is_clean_github_markdown(tmp_path):
    md = docs.render(NB, docs.Ctx('index.md', PAGES, URL, 'gfm', doc_dir='docs'), {})
    assert md.startswith('# Testbench\n\n> Checks.\n\n<!-- WARNING')
    assert '![](docs/index_files/cell-6-output-1.png)' in md and '[source](https://github.com/x/y/blob/main/y/a.py#L3)' in md
    (tmp_path/'docs'/'index_files').mkdir(parents=True); (tmp_path/'docs'/'index_files'/'cell-6-output-1.png').write_bytes(b'')
    assert docs.check_readme(md, tmp_path) == []

def test_check_readme_flags_leftovers(tmp_path):
    bad = '::: {.callout-note}\n[a](b.ipynb)\n#| hide\n[x](y){target="_blank"}\n```\ncode\n```\n![](missing.png)\n'
    errs = docs.check_readme(bad, tmp_path)
    assert len(errs) == 8, errs                # 6 lines with leftovers or a bare fence, 2 relative links to missing files
    assert any('without a language' in e for e in errs) and any('missing file missing.png' in e for e in errs)

def test_nbdev_processing_of_a_notebook():
    "nbdev's processors on a notebook: hidden cells gone, export -> folded code + API entry with docments, outputs as committed."
    nb = docs.process_all([ROOT/'tests'/'fixtures'/'docs_demo.ipynb'], workers=1)[ROOT/'tests'/'fixtures'/'docs_demo.ipynb']
    assert nb['frontmatter']['title'] == 'Demo notebook'
    files = {}
    md = docs.render(nb, docs.Ctx('demo.md', {}, URL, 'site'), files)
    assert 'hidden cell' not in md and 'nothing at all' not in md
    assert '??? source "Exported source"\n\n    ```python\n    import math\n    ```' in md     # `#| export` code: shown, folded
    assert '### circle_area { .api-name }' in md and 'def circle_area(r:float) -> float' in md
    assert '| r | float | radius, in pixels |' in md and '*Area of a circle.*' in md
    assert 'committed output' in md and 'only the output' in md and "print('only the output')" not in md
    assert '!!! tip "Radius, not diameter"' in md and r'$A = \pi r^2$' in md
    assert 'measured on an H100' in md          # a `#| gpu` cell is not run (its import would fail): output as committed
    assert list(files) == ['demo_files/cell-8-output-1.png'] or len(files) == 1

# ---------- API entries: docments tables, inherited docstrings, text that looks like HTML, definition order ----------
def _convert(box: list, # xyxy box
             resized: tuple[int, int] | None = None, # `(width, height)` the model sees; <think> is shown
             tag: str = '<answer>', # inside `<answer>...</answer>`, or the whole text
            ) -> int | None: # the result
    "Convert <think> boxes: see `<run>` and root/<run>/metrics.json."

class _Bench:
    "A benchmark."
    def score(self, x): raise NotImplementedError
class _Plain:
    def __init__(self, a): self.a = a

def entry(sym): return docs._table_renderer()(sym)._repr_markdown_()

def rows(h): return [re.findall(r'<t[dh]>(.*?)</t[dh]>', r, re.S) for r in re.findall(r'<tr>(.*?)</tr>', h, re.S)]

def test_docment_table_escapes_pipes_in_type_hints():
    md = entry(_convert)
    assert '| resized | tuple[int, int] \\| None | None | `(width, height)` the model sees; &lt;think&gt; is shown |' in md
    assert '| **Returns** | **int \\| None** |' in md and docs.check_tables('t.md', md) == []
    r = {c[0]: c for c in rows(html(md))}
    assert r['resized'] == ['resized', 'tuple[int, int] | None', 'None', '<code>(width, height)</code> the model sees; &lt;think&gt; is shown']
    assert all(len(c) == 4 for c in r.values())

def test_check_tables_flags_a_split_row():
    bad = '| | **Type** | **Default** | **Details** |\n| -- | -- | -- | -- |\n| resized | tuple[int, int] | None | None | desc |'
    assert len(docs.check_tables('boxes.md', bad)) == 1
    assert docs.check_tables('boxes.md', bad.replace('] | None | None', '] \\| None | None')) == []
    assert docs.check_tables('a.md', '| a | b |\n|--|--|\n| `x | y` | z |\n```\n| not | a | table |\n```') == []

def test_no_inherited_builtin_docstrings():
    assert 'Call self as a function' not in entry(_Bench.score) and '```python\ndef score(x)\n```' in entry(_Bench.score)
    assert 'Initialize self' not in entry(_Plain) and '*A benchmark.*' in entry(_Bench)
    assert docs.own_doc('Call self as a function.') == '' and docs.own_doc('Return self==value.') == ''
    assert docs.own_doc('Score one answer.') == 'Score one answer.'

def test_angle_brackets_show_literally():
    md = entry(_convert)
    assert '*Convert &lt;think&gt; boxes: see `<run>` and root/&lt;run&gt;/metrics.json.*' in md
    assert '| tag | str | &lt;answer&gt; | inside `<answer>...</answer>`, or the whole text |' in md
    h = html(md)
    assert '<think>' not in h and '<answer>' not in h and '&lt;think&gt;' in h and '<code>&lt;answer&gt;...&lt;/answer&gt;</code>' in h
    assert docs.md_escape('a <b> `<c>` <https://x.org>\n```\n<d>\n```') == 'a &lt;b&gt; `<c>` <https://x.org>\n```\n<d>\n```'
    assert site('Think inside <think> </think>, <b>bold</b>, `<answer>`') == 'Think inside &lt;think&gt; &lt;/think&gt;, <b>bold</b>, `<answer>`'

def test_check_page_flags_api_entry_defects():
    def page(*entries): return '<article>' + ''.join(f'<div class="api-entry" markdown>{e}</div>' for e in entries) + '</article>'
    def src(line): return f'<a class="api-source" href="https://github.com/x/y/blob/main/y/a.py#L{line}">source</a>'
    good = page(src(10) + '<h3 id="a" class="api-name">a</h3><p><em>Do a &lt;think&gt;.</em></p>', src(20) + '<p><em>b</em></p>')
    assert docs.check_page('p.html', good) == []
    errs = docs.check_page('p.html', page(src(20) + '<p><em>Call self as a function.</em></p>', src(10) + '<p>a <think> b</p>'))
    assert len(errs) == 3 and any('<think>' in e for e in errs) and any('Call self' in e for e in errs) and any('definition order' in e for e in errs)

def test_api_entries_in_definition_order(tmp_path):
    src = ('#| export\nclass A:\n    "A."\n    def m1(self): "m1."\n    def m2(self): "m2."\n\n'
           'def f():\n    "f."\n\nclass B:\n    "B."\n    def n(self): "n."')
    nb = {'nbformat': 4, 'nbformat_minor': 5, 'metadata': {'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'}},
          'cells': [{'cell_type': 'markdown', 'id': 'c0', 'metadata': {}, 'source': '# Order\n\n> API entries in definition order.'},
                    {'cell_type': 'code', 'id': 'c1', 'metadata': {}, 'source': src, 'outputs': [], 'execution_count': None}]}
    p = tmp_path/'order.ipynb'; p.write_text(__import__('json').dumps(nb))
    md = docs.render(docs.process_all([p], workers=1)[p], docs.Ctx('order.md', {}, URL, 'site'), {})
    assert re.findall(r'^### (\S+) \{ \.api-name \}', md, re.M) == ['A', 'A.m1', 'A.m2', 'f', 'B', 'B.n']

# ---------- exported code on the page, cells the build does not run ----------
def _nb(tmp_path, *cells):
    nb = {'nbformat': 4, 'nbformat_minor': 5, 'metadata': {'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'}},
          'cells': [{'cell_type': 'markdown', 'id': 'c0', 'metadata': {}, 'source': '# Shown\n\n> Exported code on the page.'}] +
                   [dict(c, id=f'c{i + 1}', metadata={}, **({'outputs': c.get('outputs', []), 'execution_count': None} if c['cell_type'] == 'code' else {}))
                    for i, c in enumerate(cells)]}
    p = tmp_path/'shown.ipynb'; p.write_text(__import__('json').dumps(nb))
    return p

def test_exported_code_is_shown_folded_before_its_api_entries(tmp_path):
    p = _nb(tmp_path, {'cell_type': 'code', 'source': '#| export\nLIMIT = 42\n\ndef g(x):\n    "G."\n    return x * LIMIT'},
            {'cell_type': 'code', 'source': '#| export\n#| hide\nSECRET = 1'})
    md = docs.render(docs.process_all([p], workers=1)[p], docs.Ctx('shown.md', {}, URL, 'site'), {})
    assert '??? source "Exported source"\n\n    ```python\n    LIMIT = 42\n' in md and '    return x * LIMIT' in md
    assert md.index('return x * LIMIT') < md.index('### g { .api-name }') and 'SECRET' not in md
    assert '<details class="source">' in html(md) and '#|' not in md

def test_cells_not_run_are_marked():
    nb = {'frontmatter': {'title': 'T'}, 'cells': [
        cell('Load the 7B model.', kind='markdown'),
        dict(cell('load_model("7B")', [{'output_type': 'stream', 'name': 'stdout', 'text': 'ok\n'}]), skipped=['gpu']),
        dict(cell('train()'), skipped=['slow']),
        cell('On a GPU (flagged `#| gpu`):', kind='markdown'),
        dict(cell('evaluate()'), skipped=['gpu']),
        cell('fast()')]}
    md = docs.render(nb, docs.Ctx('t.md', {}, URL, 'site'), {})
    assert '*Not run when this page was built (needs a GPU); the output below is the one committed.*\n{: .cell-skipped }' in md
    assert '*Not run when this page was built (long run).*' in md and md.count('Not run when') == 2   # the page says so already
    assert md.index('load_model') < md.index('needs a GPU') < md.index('```{ .text .output }\nok')
    assert 'class="cell-skipped"' in html(md)
    assert '{:' not in docs.render(nb, docs.Ctx('t.md', {}, URL, 'gfm'), {})

def test_skipped_cells_are_flagged_by_processing():
    nb = docs.process_all([ROOT/'tests'/'fixtures'/'docs_demo.ipynb'], workers=1)[ROOT/'tests'/'fixtures'/'docs_demo.ipynb']
    assert [c.get('skipped') for c in nb['cells'] if c.get('skipped')] == [['gpu']]

BUILT = ROOT/'docs'
@pytest.mark.skipif(not (BUILT/'boxes.html').exists(), reason='docs/ not built')
def test_built_pages_show_exported_code():
    import html as h
    def text(page): return h.unescape(re.sub(r'<[^>]+>', '', (BUILT/page).read_text()))
    boxes = text('boxes.html')
    import inspect, importlib
    src = inspect.getsource(importlib.import_module('locus.boxes').iou)
    body = [l.strip() for l in src[src.index('"'):].splitlines() if l.strip()]          # docstring and body of `iou`
    assert body and all(l in boxes for l in body)
    assert 'LOCUS_GRPO_DEFAULTS: dict[str, Any] = dict(' in text('config.html') and 'PRESETS' in text('cues.html')
    assert 'Not run when this page was built' in text('eval.html')
    assert 'md-grid' in (BUILT/'assets'/'locus.css').read_text() and 'data-md-component="source"' not in (BUILT/'boxes.html').read_text()


def test_check_flags_unstyled_dataframes(tmp_path):
    """A page with a pandas table and no `table.dataframe` rule is a defect; the shipped stylesheet has the rule."""
    (tmp_path / "page.html").write_text('<div class="output-html"><table border="1" class="dataframe"><tr><td>1</td></tr></table></div>')
    (tmp_path / "site.css").write_text(".md-typeset table:not([class]) { font-size: .8rem; }")
    assert docs.check_dataframe_style(tmp_path) and "page.html" in docs.check_dataframe_style(tmp_path)[0]
    (tmp_path / "locus.css").write_text((ROOT / "tools/docs_assets/locus.css").read_text())
    assert docs.check_dataframe_style(tmp_path) == []
