//! The bare-metal runtime: entry (CPU state for SSE/AVX/AVX-512, stack, .bss),
//! the C memory functions the compiler calls, Bochs's port 0xE9 console, the
//! shutdown port, and the panic handler.

use core::arch::{asm, global_asm};
use core::fmt::{self, Write};

/// Stack size (in .bss, zeroed by `_start` before use).
const STACK_BYTES: usize = 1 << 20;

#[repr(C, align(16))]
struct Stack([u8; STACK_BYTES]);

#[no_mangle]
static mut STACK: Stack = Stack([0; STACK_BYTES]);

// Entered from boot.S in 64-bit mode with interrupts off, the first 1 GiB
// identity-mapped. Before any Rust code runs:
// - zero .bss (the stack lives there, so this comes first, with no calls);
// - SSE: CR0.EM = 0, CR0.MP = 1, CR0.NE = 1, CR0.TS = 0; CR4.OSFXSR,
//   CR4.OSXMMEXCPT; XSAVE: CR4.OSXSAVE;
// - XCR0 = 0xE7 (x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM) masked by what
//   CPUID.(0Dh,0).EAX says the CPU supports, so embergpt's own probe (CPUID
//   + XGETBV) sees exactly what this CPU model and "OS" provide.
global_asm!(
    r#"
    .section .text.entry, "ax"
    .globl _start
_start:
    cli
    cld
    lea rdi, [rip + __bss_start]
    lea rcx, [rip + __bss_end]
    sub rcx, rdi
    xor eax, eax
    rep stosb
    lea rsp, [rip + STACK + {stack}]
    mov rax, cr0
    and rax, ~((1 << 2) | (1 << 3))
    or rax, (1 << 1) | (1 << 5)
    mov cr0, rax
    mov rax, cr4
    or rax, (1 << 9) | (1 << 10) | (1 << 18)
    mov cr4, rax
    mov eax, 0x0d
    xor ecx, ecx
    cpuid
    and eax, 0xe7
    xor edx, edx
    xor ecx, ecx
    xsetbv
    xor ebp, ebp
    call {main}
2:  hlt
    jmp 2b

    .text
    .globl memcpy
memcpy:
    mov rax, rdi
    mov rcx, rdx
    rep movsb
    ret

    .globl memmove
memmove:
    mov rax, rdi
    mov rcx, rdx
    cmp rdi, rsi
    jbe 3f
    lea rsi, [rsi + rdx - 1]
    lea rdi, [rdi + rdx - 1]
    std
    rep movsb
    cld
    ret
3:  rep movsb
    ret

    .globl memset
memset:
    mov r8, rdi
    mov eax, esi
    mov rcx, rdx
    rep stosb
    mov rax, r8
    ret

    // The precompiled core (built with unwinding) references the personality
    // routine; with panic = "abort" nothing ever unwinds, so it never runs.
    .globl rust_eh_personality
rust_eh_personality:
    ud2

    .globl memcmp
    .globl bcmp
memcmp:
bcmp:
    xor eax, eax
    test rdx, rdx
    jz 5f
4:  movzx eax, byte ptr [rdi]
    movzx ecx, byte ptr [rsi]
    sub eax, ecx
    jnz 5f
    inc rdi
    inc rsi
    dec rdx
    jnz 4b
5:  ret
"#,
    stack = const STACK_BYTES,
    main = sym crate::main,
);

/// One byte to Bochs's debug port (`port_e9_hack: enabled=1`).
fn outb(port: u16, b: u8) {
    // SAFETY: port I/O on the emulated machine; ports 0xE9 and 0x8900 have no
    // effect on memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") b, options(nomem, nostack, preserves_flags)) };
}

/// The console: Bochs's port 0xE9.
pub struct Con;

impl Write for Con {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            outb(0xe9, b);
        }
        Ok(())
    }
}

/// Leave Bochs: the Bochs BIOS shutdown port (writing "Shutdown" to 0x8900
/// ends the simulation).
pub fn shutdown() -> ! {
    for b in b"Shutdown" {
        outb(0x8900, *b);
    }
    loop {
        // SAFETY: halting with interrupts off only stops this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Con, "\nx86-bare: FAIL panic: {info}");
    shutdown()
}
