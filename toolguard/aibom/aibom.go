package aibom

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/agentguard/agentguard/toolguard"
)

// Transports of upstream MCP servers.
const (
	TransportStdio = "stdio"
	TransportHTTP  = "streamable-http"
)

// Inventory is what a BOM describes. Only Application.Name is required:
// [New] refuses the zero Inventory.
type Inventory struct {
	// Application is the program the agent runs in.
	Application Application
	// Guard, if not nil, contributes its policy and its registered tools.
	// Tools that a server in Servers lists are described under that
	// server, not as in-process tools.
	Guard *toolguard.Guard
	// Servers are the upstream MCP servers the agent reaches (through a
	// guardmcp proxy: see guardmcp's Proxy.BOMServer).
	Servers []Server
	// Models are the models the application declares.
	Models []Model

	// Time is the BOM's timestamp; zero means now.
	Time time.Time
	// SerialNumber is the BOM's serial number, "urn:uuid:…"; empty means a
	// new random one.
	SerialNumber string
}

// Application names the program the agent runs in.
type Application struct {
	Name        string
	Version     string
	Description string
	// Supplier is the organisation that supplies the application.
	Supplier string
}

// Server describes an upstream MCP server.
type Server struct {
	// Name and Version are what the server announced (serverInfo).
	Name    string
	Version string
	// Transport is TransportStdio or TransportHTTP.
	Transport string
	// Command is the argv of a stdio server.
	Command []string
	// URL is the endpoint of an HTTP server.
	URL string
	// ProtocolVersion is the MCP protocol version negotiated.
	ProtocolVersion string
	// LockFile is the tool lock pinning the server's tools, if any.
	LockFile string
	// Tools are the tools the server lists, served or disabled.
	Tools []ServerTool
}

// ServerTool is a tool an upstream MCP server lists.
type ServerTool struct {
	Name        string
	Title       string
	Description string
	// Digest is the digest of the definition as listed (guardmcp.ToolDigest).
	Digest string
	// LockedDigest is the digest the tool lock holds for the tool; empty
	// when there is no lock or the lock does not name the tool.
	LockedDigest string
	// Disabled, if not empty, is why calls to the tool are denied.
	Disabled string
	// Annotations are the tool's annotations as listed.
	Annotations map[string]any
	// Findings are problems found in the tool's definition, such as
	// instructions hidden in its description.
	Findings []Finding
}

// Finding is a problem found in a tool, recorded as a vulnerability that
// affects the tool.
type Finding struct {
	// ID names the finding, such as "tool-poisoning". Required.
	ID string
	// Severity is one of critical, high, medium, low, info, none, unknown;
	// empty means unknown.
	Severity    string
	Description string
	Detail      string
}

// Model is a model the application uses, with the fields of a CycloneDX
// model card.
type Model struct {
	// Name is required.
	Name    string
	Version string
	// Provider is the organisation that supplies the model.
	Provider    string
	Description string
	// PURL is the model's package URL, such as pkg:huggingface/….
	PURL string
	// ModelCardURL links the provider's model card.
	ModelCardURL string

	// Approach is supervised, unsupervised, reinforcement-learning,
	// semi-supervised or self-supervised.
	Approach           string
	Task               string
	ArchitectureFamily string
	ModelArchitecture  string
	// Datasets name the datasets the model was trained or evaluated on.
	Datasets []string

	Users                 []string
	UseCases              []string
	TechnicalLimitations  []string
	PerformanceTradeoffs  []string
	EthicalConsiderations []string
}

// New builds the BOM of inv. It fails if a required name is missing, a
// server URL is not absolute, or a tool's schema or annotations cannot be
// digested; the BOM is complete or not returned. New only reads the guard,
// so it may run while the guard serves calls; the BOM shows the policy and
// tools in force at that moment.
func New(inv Inventory) (*cdx.BOM, error) {
	if inv.Application.Name == "" {
		return nil, errors.New("aibom: the application needs a name")
	}
	b := &builder{inv: inv, refs: map[string]bool{}}
	if err := b.build(); err != nil {
		return nil, err
	}
	return b.bom, nil
}

func newSerial() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("aibom: serial number: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}
