/*
 * main.c - the pexec command (the whole of it is in cli.c).
 */
#include "cli.h"

int main(int argc, char **argv)
{
	return pexec__cli_main(argc, argv, NULL);
}
