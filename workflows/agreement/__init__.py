"""Framework-agreement approval (puitesopimus): the agreement (parent) and one approval case per party (children)."""
