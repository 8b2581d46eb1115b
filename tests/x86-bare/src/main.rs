#![no_std]
#![no_main]

mod rt;

use core::fmt::Write;
use rt::Con;

extern "C" fn main() -> ! {
    let _ = writeln!(Con, "hello from x86-bare {:?}", embergpt::Backend::detect());
    for b in embergpt::Backend::ALL {
        let _ = writeln!(Con, "{} {}", b.name(), b.is_available());
    }
    rt::shutdown()
}
