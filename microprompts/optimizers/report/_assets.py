"""The report page's inline CSS and script: the layout (nothing wider than the page; long text wraps) and a table
sorter (click a header; `#sort=<column>:<asc|desc>` in the address sorts on load)."""

from __future__ import annotations

__all__ = ["SCRIPT", "STYLE"]

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:24px 28px;background:#fff;min-height:100vh}
h1{font-size:1.5em;margin:.2em 0 .6em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #e3e3e3;
padding-bottom:.25em}h3{font-size:1em;margin:1.2em 0 .3em}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.note{color:#555;font-size:13px;margin:.3em 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{flex:1 1 150px;border:1px solid #e3e3e3;border-radius:8px;padding:10px 12px;background:#fcfcfc;min-width:0}
.card .k{font-size:12px;color:#666;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:18px;font-weight:600;margin:2px 0;overflow-wrap:anywhere}
.card .n{font-size:12px;color:#555;overflow-wrap:anywhere}
figure{margin:8px 0}figure svg{max-width:100%;height:auto;display:block}
figure.plot svg{width:100%}figure.half{max-width:760px}
.pair{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}
.pair figure{flex:1 1 320px;min-width:0;border:1px solid #eee;border-radius:8px;padding:6px}
.pair figure svg{margin:0 auto}figcaption{font-size:13px;font-weight:600;color:#333;margin:2px 4px}
.pair figure.plot{flex:2 1 480px;border:0;padding:0}
.pair>table{flex:1 1 260px}
.legend{font-size:12px;color:#444}.sw{display:inline-block;width:12px;height:12px;border-radius:3px;
margin:0 4px 0 12px;vertical-align:-2px;border:2px solid #4d4d4d}.sw.mp{background:#dbe8f6}
.sw.fn{background:#ececec;border-radius:0}.sw.ch{border-color:#e08a00}.sw.ad{border-color:#2ca02c}
.sw.rm{border-color:#d62728;border-style:dashed}
table{border-collapse:collapse;margin:.6em 0;font-size:13px;max-width:100%}
td,th{border:1px solid #ddd;padding:4px 7px;text-align:left;vertical-align:top;overflow-wrap:break-word}
td.nw{white-space:nowrap}
th{background:#f3f4f6}
table.sortable{width:100%}table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
tr.screened_out td{color:#6b6b6b}tr.winner td{background:#fff1f0;font-weight:600}
tr.baseline td{background:#f4f4f4}tr.stopped td{color:#a06a00}
td.addr{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
td.addr .chg{color:#666;font-size:11px;overflow-wrap:anywhere}td.addr .chg:not(:empty)::before{content:"→ "}
table.rows{table-layout:fixed;width:100%}table.rows td{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12px}
pre.udiff{white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;font-size:12px;line-height:1.45;
border:1px solid #e3e3e3;border-radius:6px;padding:6px 0;margin:0;background:#fcfcfc}
pre.udiff span{display:block;padding:0 10px}pre.udiff .add{background:#e6ffec}pre.udiff .del{background:#ffebe9}
pre.udiff .hunk{color:#6f42c1;background:#f5f0ff}pre.udiff .file{color:#555;font-weight:600}
details{margin:.6em 0}summary{cursor:pointer;color:#333}
"""

# Sorts a table's body rows by a column: numbers by the cell's data-v (blank sorts below every number), text by its
# content. Marks each sortable table data-sort-ready once wired, and the body data-fits-width when nothing overflows.
SCRIPT = """
(function(){
  function key(cell, num){
    var v = cell.hasAttribute('data-v') ? cell.getAttribute('data-v') : cell.textContent;
    if (!num) return v.toLowerCase();
    var n = parseFloat(v); return isNaN(n) ? -Infinity : n;
  }
  function sortBy(table, col, desc){
    var ths = table.tHead.rows[0].cells, num = ths[col].getAttribute('data-type') === 'num';
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = key(a.cells[col], num), y = key(b.cells[col], num), c = x < y ? -1 : x > y ? 1 : 0;
      return desc ? -c : c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
    for (var i = 0; i < ths.length; i++) ths[i].removeAttribute('aria-sort');
    ths[col].setAttribute('aria-sort', desc ? 'descending' : 'ascending');
  }
  var tables = document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables, function(table){
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function(th, col){
      th.addEventListener('click', function(){
        sortBy(table, col, th.getAttribute('aria-sort') === 'ascending');
      });
    });
    table.setAttribute('data-sort-ready', '1');
  });
  var m = /sort=([A-Za-z_]+)(?::(asc|desc))?/.exec(location.hash);
  if (m && tables.length) {
    var ths = tables[0].tHead.rows[0].cells;
    for (var i = 0; i < ths.length; i++)
      if (ths[i].getAttribute('data-key') === m[1]) sortBy(tables[0], i, m[2] === 'desc');
  }
  var root = document.documentElement;
  document.body.setAttribute('data-fits-width', root.scrollWidth <= root.clientWidth ? 'yes' : 'no');
})();
"""
