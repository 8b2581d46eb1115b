/* The GGUF model, linked into flash and read in place (MODEL_FILE from the Makefile). */
    .section .model, "a"
    .balign 64
    .global egpt_model_start
egpt_model_start:
    .incbin MODEL_FILE
    .global egpt_model_end
egpt_model_end:
    .section .note.GNU-stack, "", %progbits
