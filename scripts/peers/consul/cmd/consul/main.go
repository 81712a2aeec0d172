// Command consul is the Consul agent plus the CLI commands tests use, built from the hashicorp/consul
// module pinned in go.mod. Upstream's full registry is not used: its `troubleshoot` command needs a
// version of the consul/troubleshoot submodule that was never published to the module proxy.
package main

import (
	"fmt"
	"io"
	"log"
	"os"

	mcli "github.com/mitchellh/cli"

	"github.com/hashicorp/consul/command/agent"
	"github.com/hashicorp/consul/command/catalog"
	"github.com/hashicorp/consul/command/cli"
	"github.com/hashicorp/consul/command/info"
	"github.com/hashicorp/consul/command/kv"
	"github.com/hashicorp/consul/command/leave"
	"github.com/hashicorp/consul/command/members"
	"github.com/hashicorp/consul/command/services"
	"github.com/hashicorp/consul/command/version"
)

func main() {
	// The agent logs through its own logger; the std logger only carries library noise.
	log.SetOutput(io.Discard)
	ui := &cli.BasicUI{BasicUi: mcli.BasicUi{Writer: os.Stdout, ErrorWriter: os.Stderr}}
	cmds := map[string]mcli.CommandFactory{
		"agent":    func() (mcli.Command, error) { return agent.New(ui), nil },
		"catalog":  func() (mcli.Command, error) { return catalog.New(), nil },
		"info":     func() (mcli.Command, error) { return info.New(ui), nil },
		"kv":       func() (mcli.Command, error) { return kv.New(), nil },
		"leave":    func() (mcli.Command, error) { return leave.New(ui), nil },
		"members":  func() (mcli.Command, error) { return members.New(ui), nil },
		"services": func() (mcli.Command, error) { return services.New(), nil },
		"version":  func() (mcli.Command, error) { return version.New(ui), nil },
	}
	c := &mcli.CLI{
		Args:        os.Args[1:],
		Commands:    cmds,
		Name:        "consul",
		HelpFunc:    mcli.BasicHelpFunc("consul"),
		HelpWriter:  os.Stdout,
		ErrorWriter: os.Stderr,
	}
	if c.IsVersion() {
		os.Exit(version.New(ui).Run(nil))
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "consul: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}
