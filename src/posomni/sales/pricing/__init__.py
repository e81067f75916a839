"""The pricing engine: a sale's promotions, discounts, tax and deposits as a pure function, in cents."""

from posomni.sales.pricing.allocation import allocate
from posomni.sales.pricing.engine import price_sale
from posomni.sales.pricing.inputs import (
    AmountOff,
    CaseDeal,
    ManualDiscount,
    PercentOff,
    PercentOffQuantity,
    PricingError,
    Promotion,
    QuantityForPrice,
    SaleInput,
    SaleLineInput,
    SetMode,
    UnknownTaxClass,
    case_promotion_id,
)
from posomni.sales.pricing.results import AppliedPromotion, LineShare, PricedLine, PricedSale, TaxTotal

__all__ = [
    "AmountOff",
    "AppliedPromotion",
    "CaseDeal",
    "LineShare",
    "ManualDiscount",
    "PercentOff",
    "PercentOffQuantity",
    "PricedLine",
    "PricedSale",
    "PricingError",
    "Promotion",
    "QuantityForPrice",
    "SaleInput",
    "SaleLineInput",
    "SetMode",
    "TaxTotal",
    "UnknownTaxClass",
    "allocate",
    "case_promotion_id",
    "price_sale",
]
