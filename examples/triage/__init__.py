"""A support-ticket triage agent: extract, classify, then escalate or reply, with a rules-based dataset."""
