/*
 * PVH entry. Xen's domain builders (libxl, the dom0 builder) and QEMU's
 * -kernel loader find the 32-bit entry point in the XEN_ELFNOTE_PHYS32_ENTRY
 * note and jump there in 32-bit protected mode, paging off, with %ebx the
 * physical address of struct hvm_start_info and no usable stack.
 *
 * We zero .bss, build identity page tables for the first 4 GiB (4 KiB
 * pages for the first 4 MiB with a guard page below the boot stack, 2 MiB
 * pages above), enable PAE + long mode + SSE, and call
 * kernel_entry(start_info).
 * The kernel later replaces these tables with its own.
 */

        .set XEN_ELFNOTE_PHYS32_ENTRY, 18

        .pushsection .note.Xen, "a", @note
        .balign 4
        .long 4                         /* namesz: "Xen\0" */
        .long 4                         /* descsz */
        .long XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .balign 4
        .long pvh_start32
        .balign 4
        .popsection

        /*
         * FILL table, count, first, step: writes `count` 8-byte page-table
         * entries at `table`, the low halves `first`, `first + step`, ...
         * (the high halves stay 0: .bss is zeroed first).
         */
        .macro FILL table, count, first, step
        movl    $\table, %edx
        movl    \first, %eax
        movl    $\count, %ecx
9:      movl    %eax, (%edx)
        addl    $\step, %eax
        addl    $8, %edx
        loop    9b
        .endm

        .pushsection .boot.text, "ax"
        .code32
        .globl pvh_start32
pvh_start32:
        cli
        cld
        movl    %ebx, %esi              /* keep hvm_start_info in %esi */

        /* Zero .bss (the boot stack and page tables live there). */
        movl    $__bss_start, %edi
        movl    $__bss_end, %ecx
        subl    %edi, %ecx
        xorl    %eax, %eax
        rep stosb

        movl    $boot_stack_top, %esp

        /* PML4[0] -> PDPT (present | writable) */
        FILL    boot_pml4, 1, $(boot_pdpt + 0x3), 0
        /* PDPT[0..3] -> the four page directories */
        FILL    boot_pdpt, 4, $(boot_pd + 0x3), 4096
        /* 2048 x 2 MiB identity mappings: present | writable | PS */
        FILL    boot_pd, 2048, $0x83, 0x200000

        /*
         * The first 4 MiB (the kernel image, its .bss and the boot stack)
         * with 4 KiB pages instead, so that the page below the boot stack
         * can stay unmapped: a stack overflow faults there instead of
         * silently rewriting the page tables just below it.
         */
        FILL    boot_pt, 1024, $0x3, 4096
        movl    $boot_stack_guard, %eax
        shrl    $12, %eax               /* pfn < 1024, checked by linker.ld */
        movl    $0, boot_pt(,%eax,8)
        /* PD0[0..1] -> boot_pt, replacing the first two 2 MiB mappings */
        FILL    boot_pd, 2, $(boot_pt + 0x3), 4096

        /* CR4: PAE, OSFXSR, OSXMMEXCPT (core uses SSE) */
        movl    %cr4, %eax
        orl     $((1 << 5) | (1 << 9) | (1 << 10)), %eax
        movl    %eax, %cr4

        movl    $boot_pml4, %eax
        movl    %eax, %cr3

        /* EFER.LME */
        movl    $0xc0000080, %ecx
        rdmsr
        orl     $(1 << 8), %eax
        wrmsr

        /* CR0: PG | WP | NE | MP | PE, clear EM and TS */
        movl    %cr0, %eax
        andl    $~((1 << 2) | (1 << 3)), %eax
        orl     $((1 << 31) | (1 << 16) | (1 << 5) | (1 << 1) | 1), %eax
        movl    %eax, %cr0

        lgdt    boot_gdt_ptr
        ljmp    $0x08, $start64

        .code64
start64:
        movl    $0x10, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss
        movl    %eax, %fs
        movl    %eax, %gs
        movabsq $boot_stack_top, %rsp
        fninit
        movl    %esi, %edi              /* zero-extends: start info paddr */
        xorl    %ebp, %ebp
        call    kernel_entry
        /* kernel_entry does not return; block with interrupts on if it does */
3:      sti
        hlt
        jmp     3b

        .balign 8
boot_gdt:
        .quad   0                       /* null */
        .quad   0x00af9a000000ffff      /* 0x08: 64-bit code */
        .quad   0x00cf92000000ffff      /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
        .word   boot_gdt_end - boot_gdt - 1
        .long   boot_gdt
        .popsection

        .pushsection .bss.boot, "aw", @nobits
        .balign 4096
        .globl boot_pml4
boot_pml4:
        .skip   4096
boot_pdpt:
        .skip   4096
boot_pd:
        .skip   4 * 4096
boot_pt:
        .skip   2 * 4096
        .globl  boot_stack_guard
boot_stack_guard:                       /* unmapped: catches overflow */
        .skip   4096
boot_stack:
        .skip   64 * 1024
boot_stack_top:
        .popsection
