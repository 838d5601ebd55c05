/* mem: the process's memory behaviour, set once by every tool before it starts work. */
#ifndef TB_MEM_H
#define TB_MEM_H

/* Makes freed large blocks go back to the system at once (see mem.c for why). */
void tb_mem_bound(void);

#endif
