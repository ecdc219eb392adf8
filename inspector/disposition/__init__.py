"""Disposition: the policy as data, the SKU catalogue, and the recommender (pure) with its loaders."""

from __future__ import annotations

from inspector.disposition.catalogue import Catalogue, sku_from_item
from inspector.disposition.loaders import load_catalogue, load_policy
from inspector.disposition.policy import Policy
from inspector.disposition.recommender import recommend

__all__ = ["Catalogue", "Policy", "load_catalogue", "load_policy", "recommend", "sku_from_item"]
