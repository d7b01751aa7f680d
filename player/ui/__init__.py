"""What the user sees and touches: the window, dialogs, terminal mode, screen-reader helpers."""
