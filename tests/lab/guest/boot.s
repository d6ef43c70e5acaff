# Boot sector of the lab's test guest: it fills guest RAM with a pattern and
# then counts, so a test can prove that a migrated guest kept its memory and
# kept running.
#
# Memory layout that tests read with the QEMU monitor (all little-endian):
#   0x500  u32  counter, incremented on every wake-up from hlt. The BIOS
#               timer interrupt (IRQ0, 18.2 Hz from SeaBIOS) wakes the CPU,
#               so the guest idles instead of spinning a host CPU.
#   0x504  u32  READY_MAGIC ("REDY") once the fill is complete, else 0.
#   0x508  u32  fill end: the pattern covers [0x100000, fill end).
#   [0x100000, fill end)  the 16 bytes "QMT-RAM-PATTERN!" repeated.
# The fill end is the top of RAM below 4 GiB, as reported by BIOS
# INT 15h AX=E801h, minus 1 MiB, which leaves the BIOS tables at the top alone.
#
# Build: as --32, ld -m elf_i386 -Ttext 0x7c00, objcopy -O binary
# (tests/lab/guest/build-image does this and pads to a 1.44 MB floppy).

        .set COUNTER, 0x500
        .set READY, 0x504
        .set FILL_END, 0x508
        .set READY_MAGIC, 0x59444552
        .set FILL_START, 0x100000
        .set FLAT_DATA_SELECTOR, 0x08

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
        # Some BIOSes jump to 07c0:0000: reload CS so labels are absolute.
        ljmp    $0, $clear_status

clear_status:
        movl    $0, COUNTER
        movl    $0, READY
        movl    $0, FILL_END

query_memory_size:
        # E801h returns KiB between 1 MiB and 16 MiB in AX (or CX) and
        # 64 KiB blocks above 16 MiB in BX (or DX).
        xorw    %cx, %cx
        xorw    %dx, %dx
        movw    $0xe801, %ax
        int     $0x15
        cli
        jc      halt_forever
        jcxz    compute_fill_end
        movw    %cx, %ax
        movw    %dx, %bx

compute_fill_end:
        movzwl  %bx, %ebx
        testl   %ebx, %ebx
        jz      ram_below_16m
        shll    $16, %ebx
        addl    $0x1000000, %ebx
        jmp     reserve_top_mib
ram_below_16m:
        movzwl  %ax, %ebx
        shll    $10, %ebx
        addl    $0x100000, %ebx
reserve_top_mib:
        subl    $0x100000, %ebx
        cmpl    $FILL_START, %ebx
        jbe     halt_forever
        movl    %ebx, FILL_END

enable_a20:
        # Fast A20 gate (port 0x92 bit 1); bit 0 would reset the machine.
        inb     $0x92, %al
        orb     $0x02, %al
        andb    $0xfe, %al
        outb    %al, $0x92

enter_unreal_mode:
        # Load FS with a flat 4 GiB descriptor in protected mode, then return
        # to real mode: FS keeps its 4 GiB limit, so 32-bit addresses work.
        lgdt    gdt_descriptor
        movl    %cr0, %eax
        orb     $1, %al
        movl    %eax, %cr0
        jmp     protected_mode
protected_mode:
        movw    $FLAT_DATA_SELECTOR, %dx
        movw    %dx, %fs
        andb    $0xfe, %al
        movl    %eax, %cr0
        jmp     real_mode
real_mode:
        xorw    %dx, %dx
        movw    %dx, %fs

fill_ram:
        movl    pattern, %eax
        movl    pattern + 4, %edx
        movl    pattern + 8, %esi
        movl    pattern + 12, %ebp
        movl    $FILL_START, %edi
fill_loop:
        movl    %eax, %fs:(%edi)
        movl    %edx, %fs:4(%edi)
        movl    %esi, %fs:8(%edi)
        movl    %ebp, %fs:12(%edi)
        addl    $16, %edi
        cmpl    %ebx, %edi
        jb      fill_loop
        movl    $READY_MAGIC, READY

count_forever:
        sti
count_loop:
        hlt
        incl    COUNTER
        jmp     count_loop

halt_forever:
        cli
        hlt
        jmp     halt_forever

        .p2align 3
gdt:
        .quad   0
        # Base 0, limit 0xfffff in 4 KiB pages, present, writable data, 32-bit.
        .quad   0x00cf92000000ffff
gdt_end:
gdt_descriptor:
        .word   gdt_end - gdt - 1
        .long   gdt

pattern:
        .ascii  "QMT-RAM-PATTERN!"

        .org    510
        .word   0xaa55
