//! The mint: the only code that computes or checks a coin tag. (Being written.)
