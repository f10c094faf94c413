/** A small grouped horizontal bar chart as inline SVG, with a text alternative for screen readers. */
export interface BarGroup {
  label: string;
  bars: { label: string; value: number; unit: string }[];
}

const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#4c9be8', '#e8a34c', '#6cc08b', '#c06cb8'];

export function barChart(title: string, groups: BarGroup[]): SVGSVGElement {
  const rowHeight = 22;
  const labelWidth = 70;
  const width = 360;
  const rows = groups.flatMap((group) => group.bars.map((bar, index) => ({ group: group.label, index, ...bar })));
  const height = rows.length * rowHeight + groups.length * 18 + 8;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  const titleElement = document.createElementNS(SVG, 'title');
  titleElement.textContent = `${title}: ${rows.map((row) => `${row.group} ${row.label} ${format(row.value)} ${row.unit}`).join('; ')}`;
  svg.append(titleElement);
  let y = 4;
  for (const group of groups) {
    svg.append(text(4, y + 12, group.label, 'chart-group'));
    y += 18;
    // Each group has its own scale: encoder ms and ms per token are different quantities.
    const max = Math.max(...group.bars.map((bar) => bar.value), 1e-9);
    group.bars.forEach((bar, index) => {
      const barWidth = Math.max(1, ((width - labelWidth - 95) * bar.value) / max);
      svg.append(text(12, y + 14, bar.label, 'chart-label'));
      const rect = document.createElementNS(SVG, 'rect');
      for (const [name, value] of Object.entries({ x: labelWidth, y: y + 3, width: barWidth, height: rowHeight - 6, rx: 3, fill: COLORS[index % COLORS.length]! })) rect.setAttribute(name, String(value));
      svg.append(rect, text(labelWidth + barWidth + 6, y + 14, `${format(bar.value)} ${bar.unit}`, 'chart-value'));
      y += rowHeight;
    });
  }
  return svg;
}

function text(x: number, y: number, content: string, className: string): SVGTextElement {
  const element = document.createElementNS(SVG, 'text');
  element.setAttribute('x', String(x));
  element.setAttribute('y', String(y));
  element.setAttribute('class', className);
  element.textContent = content;
  return element;
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}
