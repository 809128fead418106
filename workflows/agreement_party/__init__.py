"""Definition folder of the per-party approval child workflow; its logic lives in workflows.agreement."""
