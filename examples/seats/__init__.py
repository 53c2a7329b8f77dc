"""The seed talk's seat recommendation micro-prompt: a flow, a rules-based case generator and a metric."""
