"""The reference panel's text, built from the registries: which initialization goes with which
activation, every scheme's formula and framework names, the bias inits. No Qt here."""

from __future__ import annotations

from html import escape

from initsim.engine import ACTIVATIONS, BIAS_INITS, SCHEMES
from initsim.engine.params import params_text

STYLE = """
<style>
h2 { margin-top: 18px; margin-bottom: 6px; }
td, th { padding: 3px 8px; vertical-align: top; }
th { background: #eef1f5; text-align: left; }
code { font-family: monospace; }
.muted { color: #555; }
</style>
"""


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table border='1' cellspacing='0' width='100%'><tr>{head}</tr>{body}</table>"


def _call(name: str, params: dict) -> str:
    args = params_text(params)
    return f"<code>{escape(name)}{'(' + escape(args) + ')' if args else ''}</code>"


def pairing_table() -> str:
    rows = []
    for act in ACTIVATIONS.values():
        recommended = _call(act.recommended, act.recommended_params(act.params()))
        rows.append([f"<b>{escape(act.name)}</b>", f"<code>{escape(act.formula)}</code>",
                     recommended, escape(act.why)])
    return _table(["activation", "formula", "initialization", "why"], rows)


def scheme_table() -> str:
    rows = []
    for scheme in SCHEMES.values():
        params = ", ".join(scheme.defaults) or "none"
        rows.append([f"<b>{escape(scheme.name)}</b><br><span class='muted'>{escape(scheme.family)}</span>",
                     f"<code>{escape(scheme.formula)}</code><br><span class='muted'>"
                     f"{escape(scheme.description)}</span>",
                     f"<code>{escape(scheme.pytorch)}</code>", f"<code>{escape(scheme.keras)}</code>",
                     escape(params)])
    return _table(["scheme", "formula", "PyTorch", "Keras", "parameters"], rows)


def bias_table() -> str:
    rows = [[f"<b>{escape(b.name)}</b>", f"<code>{escape(b.formula)}</code>", f"<code>{escape(b.pytorch)}</code>"]
            for b in BIAS_INITS.values()]
    return _table(["bias init", "formula", "PyTorch"], rows)


def reference_html() -> str:
    return f"""{STYLE}
<h2>Which initialization for which activation</h2>
<p>Each activation changes the variance of what passes through it; the scheme that goes with it
scales the weights to undo that change, so the signal keeps its size from layer to layer.</p>
{pairing_table()}
<h2>Initialization schemes</h2>
<p>Names carry their framework's meaning. <code>xavier_*</code> and <code>kaiming_*</code> are
PyTorch's <code>torch.nn.init</code>, whose normals are <b>not</b> truncated;
<code>glorot_*</code>, <code>he_*</code> and <code>lecun_*</code> are Keras's initializers, whose
normals <b>are</b> truncated at two standard deviations and rescaled to keep the nominal std.
A dense layer here computes <code>y = x W + b</code> with <code>W</code> of shape
(fan_in, fan_out), Keras's layout; PyTorch stores the transpose, (out, in).</p>
{scheme_table()}
<h2>Bias initializations</h2>
{bias_table()}
<h2>Reading the plots</h2>
<p><b>Gradients</b> are dL/dh, the gradient with respect to each layer's pre-activation, for a
fixed random unit-normal gradient injected at the output: they show how the network itself scales
a signal on its way back. The dashed <b>theory</b> lines are the mean-field prediction for an
infinitely wide network (Poole et al. 2016, Schoenholz et al. 2017). A unit is <b>dead</b> when its
output is zero for every input of the batch; an output is <b>saturated</b> in a flat tail of tanh
(|y| &gt; 0.97) or sigmoid (outside 0.015 to 0.985).</p>
"""
