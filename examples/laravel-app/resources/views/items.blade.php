@extends('layout')

@section('content')
<h1>{{ $title }}</h1>
<ul id="items">
@foreach ($items as $item)
  <li data-id="{{ $item->id }}">{{ $loop->iteration }}. {{ $item->name }}: {{ $item->price }}</li>
@endforeach
</ul>
<p>Total: {{ $items->sum('price') }}</p>
@endsection
