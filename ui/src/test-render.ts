// Component tests mount a component as the app would: its backend from context, not a prop.
import { render as mount } from '@testing-library/svelte';
import type { Component } from 'svelte';
import type { Backend } from './lib/backend';
import { backendContext } from './lib/backend/context';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each test's own component
export function render(component: Component<any>, { backend, ...props }: { backend: Backend } & Record<string, unknown>) {
  return mount(component, { props: { backend, ...props }, context: backendContext(backend) });
}
