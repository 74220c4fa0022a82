"""Privacy: personal data masked before a model that may not see it (`rag.privacy.pii`), and
the data's own sensitivity from its collections' labels (`rag.privacy.labels`)."""
