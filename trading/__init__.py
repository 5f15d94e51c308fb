"""Trading state that must survive anything: the shadow ledger, the journal, the audit trail."""
