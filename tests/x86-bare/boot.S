/*
 * x86-bare boot sector: BIOS (real mode) -> 64-bit long mode -> payload.
 *
 * The BIOS loads this sector at 0x7c00 with the boot drive in DL. It
 *  1. reads PAYLOAD_SECTORS sectors (LBA 1..) with INT 13h AH=42h (extended
 *     read) in 32 KiB chunks into a bounce buffer at 0x10000, and copies each
 *     chunk to 0x100000.. with INT 15h AH=87h (BIOS block move above 1 MiB);
 *  2. identity-maps the first 1 GiB with 2 MiB pages (PML4 0x1000, PDPT
 *     0x2000, PD 0x3000);
 *  3. sets CR4.PAE, CR3, EFER.LME, then CR0.PE|PG in one step (real mode
 *     straight to long mode) and far-jumps to a 64-bit code segment;
 *  4. jumps to the payload's entry at 0x100000 (its first byte).
 * Interrupts stay off from the end of loading on; the payload never enables them.
 *
 * Build: as --64 --defsym PAYLOAD_SECTORS=N boot.S -o boot.o
 *        ld -Ttext=0x7c00 --oformat binary boot.o -o boot.bin   (exactly 512 bytes)
 */
    .code16
    .text
    .globl _start
_start:
    cli
    xorw    %ax, %ax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movw    $0x7c00, %sp
    ljmp    $0, $1f                 /* normalise CS:IP to 0:7c.. */
1:  movb    %dl, drive
    sti

    /* A20 on (port 0x92, "fast A20"); INT 15h/87h also enables it itself. */
    inb     $0x92, %al
    orb     $2, %al
    andb    $0xfe, %al
    outb    %al, $0x92

load:
    movw    remaining, %cx
    jcxz    loaded
    cmpw    $64, %cx
    jbe     2f
    movw    $64, %cx
2:  movw    %cx, dap_count
    movw    $dap, %si
    movb    drive, %dl
    movb    $0x42, %ah
    int     $0x13
    jc      fail
    /* copy dap_count * 512 bytes from 0x10000 to `dest` */
    movl    dest, %eax
    movw    %ax, gdt_dst + 2        /* base 15..0 */
    shrl    $16, %eax
    movb    %al, gdt_dst + 4        /* base 23..16 */
    movb    %ah, gdt_dst + 7        /* base 31..24 */
    movw    dap_count, %cx
    shlw    $8, %cx                 /* words */
    movw    $bm_gdt, %si
    movb    $0x87, %ah
    int     $0x15
    jc      fail
    movzwl  dap_count, %eax
    addl    %eax, dap_lba
    subw    %ax, remaining
    shll    $9, %eax
    addl    %eax, dest
    jmp     load

fail:
    movw    $0x8900, %dx            /* Bochs shutdown port: end the run */
    movw    $msg_fail, %si
3:  lodsb
    outb    %al, $0xe9
    testb   %al, %al
    jnz     3b
    movw    $shutdown, %si
4:  lodsb
    testb   %al, %al
    jz      5f
    outb    %al, %dx
    jmp     4b
5:  hlt
    jmp     5b

loaded:
    cli
    /* page tables: zero 0x1000..0x3fff, then PML4[0] -> PDPT, PDPT[0] -> PD */
    xorl    %eax, %eax
    movw    $0x1000, %di
    movw    $0x1800, %cx
    rep stosw
    movl    $0x2003, 0x1000
    movl    $0x3003, 0x2000
    movw    $0x3000, %di
    movl    $0x83, %eax             /* present, writable, 2 MiB page */
    movw    $512, %cx
6:  movl    %eax, (%di)
    addl    $0x200000, %eax
    addw    $8, %di
    loop    6b

    lgdt    gdtr
    movl    $0x20, %eax             /* CR4.PAE */
    movl    %eax, %cr4
    movl    $0x1000, %eax
    movl    %eax, %cr3
    movl    $0xc0000080, %ecx       /* EFER.LME */
    rdmsr
    orl     $0x100, %eax
    wrmsr
    movl    %cr0, %eax
    orl     $0x80000001, %eax       /* PG | PE */
    movl    %eax, %cr0
    ljmp    $0x08, $long64

    .code64
long64:
    movw    $0x10, %ax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movw    %ax, %fs
    movw    %ax, %gs
    movl    $0x100000, %eax
    jmp     *%rax

    .code16
    .p2align 3
gdt:
    .quad   0
    .quad   0x00af9a000000ffff      /* 0x08: 64-bit code */
    .quad   0x00cf92000000ffff      /* 0x10: data */
gdtr:
    .word   gdtr - gdt - 1
    .long   gdt

    /* INT 15h/87h descriptor table: dummy, GDT, source, destination, BIOS CS, SS */
    .p2align 3
bm_gdt:
    .quad   0, 0
gdt_src:
    .word   0xffff, 0x0000          /* limit, base 15..0 = 0x10000 */
    .byte   0x01, 0x93, 0x00, 0x00  /* base 23..16, access, limit/flags, base 31..24 */
gdt_dst:
    .word   0xffff, 0x0000
    .byte   0x10, 0x93, 0x00, 0x00
    .quad   0, 0

dap:
    .byte   16, 0
dap_count:
    .word   0
    .word   0x0000, 0x1000          /* buffer 1000:0000 = 0x10000 */
dap_lba:
    .quad   1

dest:       .long 0x100000
remaining:  .word PAYLOAD_SECTORS
drive:      .byte 0x80
msg_fail:   .asciz "x86-bare: FAIL boot: disk read/copy error\n"
shutdown:   .asciz "Shutdown"

    .org    510
    .word   0xaa55
