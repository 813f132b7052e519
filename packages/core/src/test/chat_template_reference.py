"""Renders chat templates the way transformers' apply_chat_template does, with Python's jinja2: the independent
reference for @rlhf/core's chat-template tests (run with Debian's /usr/bin/python3 and python3-jinja2).

The environment follows transformers/utils/chat_template_utils.py (_compile_jinja_template): an
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols extension and a `generation`
block tag; `tojson` as json.dumps with ensure_ascii=False (jinja's own escapes HTML characters); `raise_exception`
and `strftime_now` as globals. The clock is fixed by the caller so that both sides print the same date.

stdin: {"template": str, "now": "YYYY-MM-DDTHH:MM:SS", "cases": [{"messages": [...], "add_generation_prompt": bool,
        "tools": list | null, "variables": {...}}]}
stdout: [{"text": str} | {"error": str}, ...] in the order of the cases.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationBlock(Extension):
    """{% generation %}...{% endgeneration %}: rendered as its body (transformers also records where it falls)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def main():
    request = json.load(sys.stdin)
    now = datetime.fromisoformat(request["now"])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: now.strftime(fmt)
    template = env.from_string(request["template"])
    out = []
    for case in request["cases"]:
        try:
            text = template.render(
                messages=case["messages"],
                tools=case.get("tools"),
                documents=None,
                add_generation_prompt=case.get("add_generation_prompt", False),
                **case.get("variables", {}),
            )
            out.append({"text": text})
        except Exception as e:  # the test compares refusals too
            out.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
