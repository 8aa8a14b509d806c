package agent_test

import (
	"os"
	"testing"

	"github.com/workerca/workerca/internal/devca"
)

// workercaBin is the workerca server binary, built once by TestMain.
var workercaBin string

func TestMain(m *testing.M) { os.Exit(devca.Main(m, &workercaBin)) }
