package main

import (
	"errors"
	"flag"
	"time"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// taskConfig is what the flags say about signed tasks in _meta.
type taskConfig struct {
	jwks, key, audience string
	maxLifetime         time.Duration
}

func (t *taskConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&t.jwks, "task-jwks", "", `JWKS file with the application's keys that sign tasks (_meta "`+guardmcp.TaskMetaKey+`"); without -task-jwks or -task-key a request carrying a task is denied`)
	fs.StringVar(&t.key, "task-key", "", "PEM public key file of the application's key that signs tasks")
	fs.StringVar(&t.audience, "task-audience", "", "audience task tokens must carry (empty: task tokens must carry none)")
	fs.DurationVar(&t.maxLifetime, "task-max-lifetime", guardmcp.DefaultTaskLifetime, "longest a task token may be valid (exp after iat and after now)")
}

func (t *taskConfig) check() error {
	switch {
	case t.jwks != "" && t.key != "":
		return errors.New("give -task-jwks or -task-key, not both")
	case t.audience != "" && t.jwks == "" && t.key == "":
		return errors.New("-task-audience needs -task-jwks or -task-key")
	case t.maxLifetime <= 0:
		return errors.New("-task-max-lifetime must be positive")
	}
	return nil
}

// option returns the proxy option that verifies tasks, or refuses them all
// when no key is given.
func (t *taskConfig) option() (guardmcp.Option, error) {
	if t.jwks == "" && t.key == "" {
		return guardmcp.WithTaskVerifier(nil), nil
	}
	keys, err := guardmcp.LoadJWTKeys(t.jwks + t.key)
	if err != nil {
		return nil, err
	}
	v, err := guardmcp.NewTaskVerifier(keys, guardmcp.TaskOptions{Audience: t.audience, MaxLifetime: t.maxLifetime})
	if err != nil {
		return nil, err
	}
	return guardmcp.WithTaskVerifier(v), nil
}
