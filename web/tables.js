// Tables: every column sorts on a click of its header, and every table downloads as CSV (raw
// values, for a spreadsheet), Markdown and LaTeX (the cells as shown, for a paper or a report).
"use strict";

const tableFormats = {
  csv: {
    type: "text/csv",
    write(header, rows) {
      const quote = (v) => {
        const s = isMissing(v) ? "" : String(v);
        return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
      };
      return [header, ...rows].map((r) => r.map(quote).join(",")).join("\n") + "\n";
    },
  },
  md: {
    type: "text/markdown",
    write(header, rows, numeric) {
      const cell = (v) => String(isMissing(v) ? "" : v).replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
      const line = (r) => "| " + r.map(cell).join(" | ") + " |";
      return [line(header), "| " + header.map((_, i) => (numeric[i] ? "---:" : ":---")).join(" | ") + " |", ...rows.map(line)].join("\n") + "\n";
    },
  },
  tex: {
    type: "application/x-tex",
    write(header, rows, numeric) {
      const escapes = { "\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", $: "\\$", "#": "\\#", _: "\\_", "{": "\\{", "}": "\\}",
                        "~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "<": "\\textless{}", ">": "\\textgreater{}", "±": "$\\pm$", "Δ": "$\\Delta$", "–": "--" };
      const cell = (v) => String(isMissing(v) ? "" : v).replace(/[\\&%$#_{}~^<>±Δ–]/g, (c) => escapes[c]).replace(/\r?\n/g, " ");
      const line = (r) => "  " + r.map(cell).join(" & ") + " \\\\";
      return ["\\begin{tabular}{" + header.map((_, i) => (numeric[i] ? "r" : "l")).join("") + "}", "  \\hline",
              line(header), "  \\hline", ...rows.map(line), "  \\hline", "\\end{tabular}"].join("\n") + "\n";
    },
  },
};

// rows: [{cells: [values], nodes: {column: Node shown instead}, rowClass}]. CSV writes the cells;
// Markdown and LaTeX write the text each cell shows.
function dataTable(title, header, rows, options = {}) {
  const isText = (i) => i === 0 || (options.textColumns || []).includes(i);
  const body = el("tbody");
  let shown = rows;
  const fill = (ordered) => {
    shown = ordered;
    body.replaceChildren(...ordered.map((r) => el("tr", { class: r.rowClass || "", "data-id": r.id ?? "" },
      r.cells.map((c, i) => el("td", { class: isText(i) ? "text" : "" }, r.nodes && r.nodes[i] ? r.nodes[i] : c)))));
  };
  fill(rows);
  const save = (kind) => {
    const shownText = [...body.children].map((tr) => [...tr.children].map((td) => td.textContent.trim()));
    const raw = shown.map((r) => r.cells.map((c) => (c instanceof Node ? c.textContent : c)));
    const format = tableFormats[kind];
    const skip = options.exportSkip || [];
    const keep = (r) => r.filter((_, i) => !skip.includes(i));
    const text = format.write(keep(header), (kind === "csv" ? raw : shownText).map(keep), keep(header.map((_, i) => !isText(i))));
    download((options.file || "table").replace(/\.csv$/, "") + "." + kind, new Blob([text], { type: format.type }));
  };
  // Numbers as numbers, missing values last, the rest as text; a second click: the other way.
  let sorted = { column: -1, ascending: true };
  const sortBy = (column, th) => {
    sorted = { column, ascending: sorted.column === column ? !sorted.ascending : true };
    const key = (r) => { const v = r.cells[column]; const n = typeof v === "number" ? v : parseFloat(v); return { v, n }; };
    const ordered = [...rows].sort((a, b) => {
      const x = key(a), y = key(b);
      const missing = (k) => isMissing(k.v) || k.v === "" || k.v === "-" || k.v === "–";
      if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;
      const order = !isNaN(x.n) && !isNaN(y.n) && !isText(column) ? x.n - y.n : String(x.v).localeCompare(String(y.v));
      return sorted.ascending ? order : -order;
    });
    for (const other of th.parentNode.children) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", sorted.ascending ? "ascending" : "descending");
    fill(ordered);
  };
  const headers = header.map((h, i) => {
    if (options.unsortable && options.unsortable.includes(i)) return el("th", { class: "text" }, options.headerNodes?.[i] ?? h);
    const th = el("th", { class: (isText(i) ? "text " : "") + "sortable", title: "sort by " + h }, h);
    th.addEventListener("click", () => sortBy(i, th));
    return th;
  });
  const table = el("table", { class: options.class || "" }, el("thead", {}, el("tr", {}, headers)), body);
  const buttons = el("span", { class: "export" }, ["csv", "md", "tex"].map((kind) =>
    el("button", { class: kind, onclick: () => save(kind), title: `download as ${ { csv: "CSV", md: "Markdown", tex: "LaTeX" }[kind] }` },
      { csv: "CSV", md: "Markdown", tex: "LaTeX" }[kind])));
  return el("section", {}, el("h2", {}, title, buttons), el("div", { class: "table-scroll" }, table));
}
