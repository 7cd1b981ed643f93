/** The demo tenant's sign-in, created at start when the deployment has the demo account (PULSE_DEMO_ACCOUNT). */
export const DEMO_USER = {
  email: "demo@pulse.local",
  password: "pulse-demo-password",
  tenantName: "Acme Logistics",
} as const;
