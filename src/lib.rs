//! embergpt: a no_std, allocation-free, quantized GPT inference core.
#![no_std]
