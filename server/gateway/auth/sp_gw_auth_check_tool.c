/* The checker on its own, for tests that must not wait for the whole
 * sealpost-gateway program: `sp-gw-auth-check check --ip ...`. */
#include "server/gateway/auth/gw_auth.h"

int
main(int argc, char **argv)
{
	if (argc < 2)
		return sp_gw_check_main(argc, argv);
	return sp_gw_check_main(argc - 1, argv + 1);
}
