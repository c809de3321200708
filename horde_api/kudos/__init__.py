"""Kudos: what requests cost, what workers earn, balances, transfers (docs/protocol.md, "Kudos")."""
