// Command go-tfe-check runs HashiCorp's Go client for the Terraform
// Enterprise API, go-tfe, against a server that claims to be that API, and
// checks that each call of its common surface does what it does against
// TFE: the values sent come back, statuses move as they should, logs hold
// the engine's output, wrong requests are refused. One line per check
// ("ok   name" or "FAIL name: why"), a JSON summary last; exit status 1 when
// a check failed, 2 when the program could not start.
//
// Environment:
//
//	TFE_ADDRESS                  the server, e.g. http://127.0.0.1:8080 (required)
//	TFE_TOKEN                    an API token of the organization (required)
//	OUTPOST_CHECK_ORG            the organization (default "default")
//	OUTPOST_CHECK_AGENT_POOL     an agent pool with a running agent (required):
//	                             the workspaces created run there
//	OUTPOST_CHECK_TIMEOUT        deadline of one check (default 5m)
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	tfe "github.com/hashicorp/go-tfe"
)

type config struct {
	address      string
	token        string
	org          string
	poolID       string
	checkTimeout time.Duration
}

// fixtures are what earlier checks made and later ones use.
type fixtures struct {
	extraPoolID    string
	agentID        string
	agentName      string
	workspace      *tfe.Workspace   // tagged, locked and renamed by the workspace checks
	pageWorkspaces []*tfe.Workspace // listed a page at a time, then deleted
	runsWS         *tfe.Workspace   // the applied run and its variants
	queueWS        *tfe.Workspace   // a run waiting behind a planned one
	stateWS        *tfe.Workspace   // state versions created through the API
	cvOne          *tfe.ConfigurationVersion
	cvThree        *tfe.ConfigurationVersion
	cvSpeculative  *tfe.ConfigurationVersion
	appliedRun     *tfe.Run
	appliedState   *tfe.StateVersion
	firstAID       string            // id of terraform_data.a before it is replaced
	secretOutputID string            // the sensitive output of the applied state
	runIDs         map[string]string // kind of run -> id, for the list filters
}

func loadConfig() (config, error) {
	cfg := config{
		address: os.Getenv("TFE_ADDRESS"),
		token:   os.Getenv("TFE_TOKEN"),
		org:     os.Getenv("OUTPOST_CHECK_ORG"),
		poolID:  os.Getenv("OUTPOST_CHECK_AGENT_POOL"),
	}
	var missing []string
	for name, value := range map[string]string{"TFE_ADDRESS": cfg.address, "TFE_TOKEN": cfg.token, "OUTPOST_CHECK_AGENT_POOL": cfg.poolID} {
		if value == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return cfg, fmt.Errorf("set %s (see --help)", strings.Join(missing, ", "))
	}
	if cfg.org == "" {
		cfg.org = "default"
	}
	cfg.checkTimeout = 5 * time.Minute
	if raw := os.Getenv("OUTPOST_CHECK_TIMEOUT"); raw != "" {
		timeout, err := time.ParseDuration(raw)
		if err != nil {
			return cfg, fmt.Errorf("OUTPOST_CHECK_TIMEOUT: %w", err)
		}
		cfg.checkTimeout = timeout
	}
	return cfg, nil
}

func usage() {
	doc := `go-tfe-check: runs go-tfe against a TFE-compatible API and checks every answer.

Environment:
  TFE_ADDRESS               the server, e.g. http://127.0.0.1:8080 (required)
  TFE_TOKEN                 an API token of the organization (required)
  OUTPOST_CHECK_ORG         the organization (default "default")
  OUTPOST_CHECK_AGENT_POOL  an agent pool with a running agent (required)
  OUTPOST_CHECK_TIMEOUT     deadline of one check (default 5m)

Prints "ok   <check>" or "FAIL <check>: <why>" per check and a JSON summary
last; exits 1 when a check failed, 2 when it could not start.
`
	fmt.Print(doc)
}

func main() {
	for _, arg := range os.Args[1:] {
		if arg == "-h" || arg == "--help" || arg == "-help" {
			usage()
			return
		}
		fmt.Fprintf(os.Stderr, "go-tfe-check: unknown argument %q (see --help)\n", arg)
		os.Exit(2)
	}
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-tfe-check: %v\n", err)
		os.Exit(2)
	}
	rec := &recorder{base: cleanhttp.DefaultPooledTransport()}
	// A safety net under the checks' own deadlines: NewClient's ping, for
	// one, has none.
	httpClient := &http.Client{Transport: rec, Timeout: 2 * time.Minute}
	c := &checker{
		ctx:        context.Background(),
		cfg:        cfg,
		httpClient: httpClient,
		rec:        rec,
		prefix:     fmt.Sprintf("gotfe-%d", time.Now().UnixNano()%1_000_000_000),
		fx:         fixtures{runIDs: map[string]string{}},
	}
	// NewClient itself asks GET /api/v2/ping for the API version and the
	// rate limit; the first check reads that exchange.
	client, err := tfe.NewClient(&tfe.Config{Address: cfg.address, Token: cfg.token, HTTPClient: httpClient})
	if err != nil {
		c.check("client: NewClient", func(context.Context) error { return err })
		c.summary()
		os.Exit(1)
	}
	c.client = client

	for _, group := range []func(){
		c.checkClient,
		c.checkOrganizations,
		c.checkAgentPools,
		c.checkAgentTokens,
		c.checkAgents,
		c.checkWorkspaces,
		c.checkWorkspaceLocks,
		c.checkWorkspaceTags,
		c.checkExecutionMode,
		c.checkWorkspaceDeletes,
		c.checkConfigurationVersions,
		c.checkAppliedRun,
		c.checkPlanAndApply,
		c.checkRunState,
		c.checkRunVariants,
		c.checkRunLists,
		c.checkRunQueue,
		c.checkStateVersions,
		c.checkCancels,
		c.checkIncludeAndMediaType,
	} {
		group()
	}
	if !c.summary() {
		os.Exit(1)
	}
}
