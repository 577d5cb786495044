package main

import (
	"context"
	"io"

	"github.com/provbox/provbox/configs"
)

// cmdRender prints exactly the bytes phone MAC would fetch for FILENAME
// (default <mac>.cfg), without recording a fetch.
func cmdRender(ctx context.Context, g globalFlags, pos []string, stdout, stderr io.Writer) error {
	db, err := openStore(g, stderr, true)
	if err != nil {
		return err
	}
	defer db.Close()
	r := &configs.Resolver{Services: db.Services(), Renderer: db.Renderer}
	name := ""
	if len(pos) == 2 {
		name = pos[1]
	}
	b, err := r.RenderFile(ctx, pos[0], name)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}
