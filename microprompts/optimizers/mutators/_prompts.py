"""Meta-prompts sent to the optimizer model by the content mutators.

Each asks for one JSON object, so a local model can be constrained by a JSON-schema grammar. Placeholders
are filled with `str.format`; bodies that quote user text fence it with <<< >>> so it reads as data.
"""

from __future__ import annotations

SYSTEM = (
    "You improve the instructions of small prompts, each one step of a language-model pipeline. "
    "Write instructions addressed to the model that runs the step. Reply with one JSON object only."
)

STEP = "Step `{node}`: reads {reads}; writes {writes}."

PARAPHRASE = """{step}

Its {section} currently reads:
<<<
{text}
>>>

Rewrite it in different words. Keep every requirement, name, label and constraint; add none; keep it about as long.
Reply as JSON: {{"instruction": "<the rewritten {section}>"}}"""

COMPRESS = """{step}

Its {section} currently reads ({length} characters):
<<<
{text}
>>>

Shorten it to at most {limit} characters. Keep every requirement, name, label and constraint; drop repetition,
filler and politeness.
Reply as JSON: {{"instruction": "<the shortened {section}>"}}"""

INDUCE = """{step}

Here are inputs the step was given and the outputs it should produce:
{examples}

Its task currently reads (it may be empty or wrong):
<<<
{text}
>>>

Infer what the step must do to turn such inputs into such outputs, and write that as a clear, general
instruction (what to produce, from what, and any rule the examples reveal). Do not copy the examples.
Reply as JSON: {{"instruction": "<the instruction>"}}"""

OPRO = """{step}

Below are versions of its {section} with the score each got on the pipeline's examples (higher is better),
from worst to best:
{trajectory}
{examples}
Write a new {section} that is different from every version above and would score higher than all of them.
Reply as JSON: {{"instruction": "<the new {section}>"}}"""

OPRO_EXAMPLES = """
Some examples of what the pipeline is given and should produce:
{rows}
"""

CRITIQUE = """A pipeline ran on the examples below and got them wrong. Its steps, in order:
{steps}

For each failing example: its inputs, the expected output, what each step produced, and the metric's feedback.
{failures}

Find the one step most responsible for these failures (a step that gets wrong input from an earlier step is not
to blame). Say what that step does wrong and how its instructions should change.
Reply as JSON: {{"critique": "<what goes wrong, and the fix>", "node": "<the step's name>"}}"""

EDIT = """{step}

The pipeline fails on some examples, and this step was found to be the cause. The critique:
<<<
{critique}
>>>

The step's {section} currently reads:
<<<
{text}
>>>

Rewrite the {section} so that the step avoids these mistakes. Keep what is right; state the fix as a general
rule, not as a list of the examples.
Reply as JSON: {{"instruction": "<the new {section}>"}}"""
