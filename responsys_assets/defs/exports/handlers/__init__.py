"""One module per export type; `registry` says which handles which, `base` what they all offer."""
