"""What one step is: micro-prompts, function nodes, routers, rendering and parsing."""

from microprompts.nodes.function import FunctionNode, RefError, Router, load_object, ref_of
from microprompts.nodes.micro_prompt import DefaultOutput, MicroPrompt, NodeInputError
from microprompts.nodes.parse import OutputParseError, cut_json, extract_json, parse_reply
from microprompts.nodes.runtime import NodeTrace, Recorder, Runtime, default_caller
from microprompts.nodes.sections import Calibration, Example, Params, Section

__all__ = [
    "Calibration",
    "DefaultOutput",
    "Example",
    "FunctionNode",
    "MicroPrompt",
    "NodeInputError",
    "NodeTrace",
    "OutputParseError",
    "Params",
    "Recorder",
    "RefError",
    "Router",
    "Runtime",
    "Section",
    "cut_json",
    "default_caller",
    "extract_json",
    "load_object",
    "parse_reply",
    "ref_of",
]
