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

// Exception stubs, 16 bytes apart from `isr_stubs`: each pushes a zero error
// code when the CPU pushes none, then its vector, and jumps to `isr_common`,
// which hands the frame to `fault` (report and leave Bochs). Without them a
// fault (say #UD from an instruction the emulated CPU lacks) would triple-fault
// and reboot the machine into the payload again.
macro_rules! stub {
    ($n:literal) => {
        concat!(
            ".p2align 4\n push 0\n push ",
            stringify!($n),
            "\n jmp isr_common\n"
        )
    };
    ($n:literal, err) => {
        concat!(".p2align 4\n push ", stringify!($n), "\n jmp isr_common\n")
    };
}

global_asm!(
    ".text",
    ".p2align 4",
    "isr_stubs:",
    stub!(0),
    stub!(1),
    stub!(2),
    stub!(3),
    stub!(4),
    stub!(5),
    stub!(6),
    stub!(7),
    stub!(8, err),
    stub!(9),
    stub!(10, err),
    stub!(11, err),
    stub!(12, err),
    stub!(13, err),
    stub!(14, err),
    stub!(15),
    stub!(16),
    stub!(17, err),
    stub!(18),
    stub!(19),
    stub!(20),
    stub!(21, err),
    stub!(22),
    stub!(23),
    stub!(24),
    stub!(25),
    stub!(26),
    stub!(27),
    stub!(28),
    stub!(29, err),
    stub!(30, err),
    stub!(31),
    "isr_common:",
    "    mov rdi, rsp",
    "    and rsp, -16",
    "    call {fault}",
    "    ud2",
    fault = sym fault,
);

const VECTORS: usize = 32;

#[repr(C, align(16))]
struct Idt([u64; 2 * VECTORS]);

static mut IDT: Idt = Idt([0; 2 * VECTORS]);

/// Point vectors 0..31 at the stubs (64-bit interrupt gates, code selector 0x08).
pub fn install_idt() {
    extern "C" {
        static isr_stubs: u8;
    }
    let base = (&raw const isr_stubs) as u64;
    // SAFETY: called once, before anything else touches IDT; the table is
    // static, so it outlives the IDTR that points at it.
    unsafe {
        let p = &raw mut IDT;
        let idt = &mut (*p).0;
        for v in 0..VECTORS {
            let h = base + 16 * v as u64;
            idt[2 * v] = (h & 0xffff) | (0x08 << 16) | (0x8e << 40) | ((h >> 16) & 0xffff) << 48;
            idt[2 * v + 1] = h >> 32;
        }
        let limit = (16 * VECTORS - 1) as u16;
        let mut idtr = [0u8; 10];
        idtr[..2].copy_from_slice(&limit.to_le_bytes());
        idtr[2..].copy_from_slice(&(idt.as_ptr() as u64).to_le_bytes());
        asm!("lidt [{}]", in(reg) idtr.as_ptr(), options(nostack, readonly));
    }
}

const NAMES: [&str; 20] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "-", "#TS", "#NP", "#SS", "#GP",
    "#PF", "-", "#MF", "#AC", "#MC", "#XM",
];

/// A CPU exception: `frame` is [vector, error code, rip, cs, rflags, rsp, ss].
extern "C" fn fault(frame: *const u64) -> ! {
    // SAFETY: isr_common passes the stack pointer at its entry, where the stub
    // and the CPU pushed these seven words.
    let f = unsafe { core::slice::from_raw_parts(frame, 7) };
    let name = NAMES.get(f[0] as usize).copied().unwrap_or("-");
    let cr2: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags)) };
    let _ = writeln!(
        Con,
        "\nx86-bare: FAIL CPU exception {} ({name}) error {:#x} at rip {:#x} rsp {:#x} cr2 {cr2:#x}",
        f[0], f[1], f[2], f[5]
    );
    shutdown()
}

/// One byte to Bochs's debug port (`port_e9_hack: enabled=1`).
fn outb(port: u16, b: u8) {
    // SAFETY: port I/O on the emulated machine; ports 0xE9 and 0x8900 have no
    // effect on memory.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") b, options(nomem, nostack, preserves_flags))
    };
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
