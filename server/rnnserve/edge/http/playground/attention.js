// An attention matrix as SVG: target pieces as rows, source pieces as columns, the weight as shade.

const SVG = "http://www.w3.org/2000/svg";
const CELL = 26;
const CHAR_WIDTH = 7.2; // of the 12px label font, to size the margins

function node(tag, attributes = {}, text = undefined) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

const widest = (labels) => Math.max(1, ...labels.map((label) => Array.from(label).length)) * CHAR_WIDTH;

/** The SVG of `attention` ({source_tokens, target_tokens, weights}, weights row-major by target). */
export function attentionSvg({ source_tokens: source = [], target_tokens: target = [], weights = [] }) {
  const left = widest(target) + 10;
  const top = widest(source) * 0.72 + 14; // labels at -45°
  const width = left + source.length * CELL + 24;
  const height = top + target.length * CELL + 4;
  const svg = node("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "attention-matrix",
    "aria-label": `Attention weights: ${target.length} target pieces by ${source.length} source pieces`,
  });
  source.forEach((piece, s) => {
    const x = left + s * CELL + CELL / 2;
    svg.append(node("text", { x, y: top - 6, transform: `rotate(-45 ${x} ${top - 6})`, class: "source" }, piece));
  });
  target.forEach((piece, t) => {
    const y = top + t * CELL + CELL / 2;
    svg.append(node("text", { x: left - 6, y, "text-anchor": "end", "dominant-baseline": "middle", class: "target" },
      piece));
    source.forEach((from, s) => {
      const weight = weights[t * source.length + s] ?? 0;
      const cell = node("rect", {
        x: left + s * CELL, y: top + t * CELL, width: CELL - 1, height: CELL - 1, class: "cell",
        "fill-opacity": Math.max(0.03, weight).toFixed(3), "data-weight": weight.toFixed(4),
      });
      cell.append(node("title", {}, `${piece} ← ${from}: ${weight.toFixed(2)}`));
      svg.append(cell);
    });
  });
  return svg;
}
