package main

import (
	"fmt"
	"os"
	"strings"

	"switchboard/config"
)

// AdminTokenEnv names the environment variable the CLI reads the admin
// API's bearer token from.
const AdminTokenEnv = "SWITCHBOARD_ADMIN_TOKEN"

// adminToken is the token for calls to the running daemon's admin API:
// from --token-file when given, else $SWITCHBOARD_ADMIN_TOKEN, else the
// config's own admin.auth token (readable by whoever can read the config
// and its token file), else none.
func adminToken(tokenFile string, f *config.File) (string, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %v", err)
		}
		tok := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if tok == "" {
			return "", fmt.Errorf("--token-file: %s is empty", tokenFile)
		}
		return tok, nil
	}
	if tok := os.Getenv(AdminTokenEnv); tok != "" {
		return tok, nil
	}
	if f != nil {
		return f.Admin.Auth.BearerToken.Reveal(), nil
	}
	return "", nil
}
