/*
 * Interrupt and exception entry.
 *
 * isr_stubs holds 256 stubs, one per vector, each 16 bytes apart (the IDT
 * setup computes isr_stubs + 16 * vector). A stub pushes a dummy error
 * code when the CPU pushes none, then the vector number, and joins
 * isr_common, which saves every general register and the x87/SSE state
 * (handlers are Rust and may use SSE) and calls trap_dispatch(&mut
 * TrapFrame). Every IDT gate runs on an IST stack, because precompiled core
 * keeps data in the red zone below %rsp.
 *
 * idle_halt is the one place where the kernel enables interrupts: it
 * saves the callee-saved registers and %rsp (IDLE_RSP), marks the CPU
 * idle (IN_IDLE), and does sti; hlt. An interrupt taken there returns to
 * idle_resume, which disables interrupts again. Because no other code runs
 * with IF set, trap_dispatch can rebuild the return to idle_resume when
 * an injected duplicate interrupt (seen with QEMU's emulated SVM) lands on
 * the IRQ stack while it is in use and overwrites the first frame.
 */
        .pushsection .text.isr, "ax"
        .code64
        .balign 16
        .globl isr_stubs
isr_stubs:
        .set vec, 0
        .rept 256
        .balign 16
        /* Vectors for which the CPU pushes an error code. */
        .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        pushq   $vec
        .else
        pushq   $0
        pushq   $vec
        .endif
        jmp     isr_common
        .set vec, vec + 1
        .endr
        .balign 16
        .globl isr_stubs_end
isr_stubs_end:

isr_common:
        pushq   %rax
        pushq   %rbx
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rdi
        pushq   %rbp
        pushq   %r8
        pushq   %r9
        pushq   %r10
        pushq   %r11
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, %rbx              /* &mut TrapFrame, callee-saved */
        subq    $512, %rsp
        andq    $~15, %rsp              /* fxsave area, also ABI alignment */
        fxsave64 (%rsp)
        cld
        movq    %rbx, %rdi
        call    trap_dispatch
        fxrstor64 (%rsp)
        movq    %rbx, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %r11
        popq    %r10
        popq    %r9
        popq    %r8
        popq    %rbp
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rbx
        popq    %rax
        addq    $16, %rsp               /* vector, error code */
        iretq

/* Saves the callee-saved registers and %rsp, marks the CPU idle. */
        .macro IDLE_ENTER
        pushq   %rbx
        pushq   %rbp
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, IDLE_RSP(%rip)
        movb    $1, IN_IDLE(%rip)
        .endm

        .globl idle_halt
        .globl idle_resume
idle_halt:
        IDLE_ENTER
        sti
        hlt
idle_resume:
        cli
        jmp     idle_epilogue

/*
 * idle_selftest: idle_halt with `int $0xf0` in place of sti; hlt, so that
 * the selftest can deliver an interrupt "at idle" and nest a second one
 * on the IRQ stack from its handler, as an injecting hypervisor would.
 * Both ways back (through the frame, or rebuilt to idle_resume) end here.
 */
        .globl idle_selftest
idle_selftest:
        IDLE_ENTER
        int     $0xf0
idle_epilogue:
        movb    $0, IN_IDLE(%rip)
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbp
        popq    %rbx
        ret
        .popsection
