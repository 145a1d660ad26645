"""`shoprec runs compare --html DIR`'s index page: the headline metrics of both runs with their
deltas, the changed parameters, and a link to each notebook's diff page (nbdime's, beside it)."""

from dataclasses import dataclass
from pathlib import Path

import jinja2

from shoprec.tracking.compare import Headline

INDEX = "index.html"
TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; }
  table { border-collapse: collapse; margin-bottom: 1.5em; }
  th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
  td.number { text-align: right; font-variant-numeric: tabular-nums; }
  .changed { font-weight: bold; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<h2>Headline metrics (candidate, evaluation)</h2>
{% if headlines %}
<table id="headline">
  <tr><th>metric</th><th>run A</th><th>run B</th><th>B - A</th></tr>
  {% for row in headlines %}
  <tr><td>{{ row.name }}</td><td class="number">{{ number(row.before) }}</td>
      <td class="number">{{ number(row.after) }}</td><td class="number">{{ delta(row) }}</td></tr>
  {% endfor %}
</table>
{% else %}
<p>Neither run was evaluated.</p>
{% endif %}
<h2>Parameters</h2>
{% if parameters %}
<ul id="parameters">
  {% for line in parameters %}<li><code>{{ line.strip() }}</code></li>{% endfor %}
</ul>
{% else %}
<p>No parameter changed.</p>
{% endif %}
<p>Metrics: {{ metrics }}.</p>
<h2>Notebooks</h2>
<table id="notebooks">
  <tr><th>notebook</th><th>outputs and code</th></tr>
  {% for page in pages %}
  <tr><td><a href="{{ page.href }}">{{ page.notebook }}.ipynb</a></td>
      {% if page.changed %}<td class="changed">changed</td>{% else %}<td>unchanged</td>{% endif %}
  </tr>
  {% endfor %}
</table>
</body>
</html>
"""


@dataclass(frozen=True)
class NotebookPage:
    """A notebook's diff page, relative to the index, and whether the notebook changed."""

    notebook: str
    href: str
    changed: bool


def _number(value: float | None) -> str:
    return "(absent)" if value is None else f"{value:.4f}"


def _delta(row: Headline) -> str:
    if row.before is None or row.after is None:
        return ""
    return f"{row.after - row.before:+.4f}"


def write_index(
    out_dir: Path,
    *,
    run_a: str,
    run_b: str,
    headlines: list[Headline],
    parameters: list[str],
    metrics: str,
    pages: list[NotebookPage],
) -> Path:
    """Write `out_dir/index.html` summarising the comparison; return its path."""
    environment = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    html = environment.from_string(TEMPLATE).render(
        title=f"run A {run_a} → run B {run_b}",
        headlines=headlines,
        parameters=parameters,
        metrics=metrics,
        pages=pages,
        number=_number,
        delta=_delta,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / INDEX
    index.write_text(html, encoding="utf-8")
    return index
